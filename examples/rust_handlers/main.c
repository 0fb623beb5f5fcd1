/* main() of the Rust example: the program is the Rust crate (a static library built by cargo),
 * linked by CMake together with msrtrace's C API library and its C++ dependencies. */
int rust_handlers_main(int argc, const char* const* argv);

int main(int argc, char** argv) { return rust_handlers_main(argc, (const char* const*)argv); }
