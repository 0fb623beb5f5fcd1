#include "handlers/table_handler.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"

namespace msrtrace {
namespace {

std::string DefaultIndexName(const MsrRow& row, uint32_t index) {
  if (row.index == row.last) return row.name;
  return absl::StrFormat("%s_%x", row.name, index - row.index);
}

bool ValidPatValue(uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    if (!ValidPatType((v >> (8 * i)) & 0xff)) return false;
  }
  return true;
}

}  // namespace

TableHandler::TableHandler(StateLayout& layout, const CpuProfile& profile, std::vector<MsrRow> rows,
                           IndexNameFn index_name, absl::Span<const TableStateDef> state)
    : profile_(profile) {
  std::sort(rows.begin(), rows.end(),
            [](const MsrRow& a, const MsrRow& b) { return a.index < b.index; });
  if (index_name == nullptr) index_name = &DefaultIndexName;
  state_.resize(state.size());
  auto reserve = [&](size_t i) {
    const TableStateDef& d = state[i];
    StateRef& ref = state_[i];
    ref.vm = d.scope == MsrScope::kVm;
    const bool find = d.shared || d.borrowed;
    const int found = !find ? -1 : ref.vm ? layout.FindVmSlot(d.name) : layout.FindVcpuSlot(d.name);
    if (found >= 0) {
      ref.id = static_cast<SlotId>(found);
    } else if (d.borrowed) {
      ref.present = false;
    } else {
      ref.id = ref.vm ? layout.AddVmSlot(d.name, d.reset) : layout.AddVcpuSlot(d.name, d.reset);
    }
    ref.has_bsp_reset = d.has_bsp_reset && !ref.vm;
    ref.bsp_reset = d.bsp_reset;
  };
  for (size_t i = 0; i < state.size(); ++i) {
    if (!state[i].after_rows) reserve(i);
  }
  entries_.reserve(rows.size());
  firsts_.reserve(rows.size());
  for (const MsrRow& row : rows) {
    Entry e;
    e.row = row;
    e.first_name = names_.size();
    e.slot_scope = row.scope;
    const bool own_slots = row.state == nullptr && row.scope != MsrScope::kNone;
    if (row.state != nullptr && row.state[0] != '\0') {
      // A named family state slot (a single-index row).
      for (size_t i = 0; i < state.size(); ++i) {
        if (std::strcmp(state[i].name, row.state) == 0) {
          e.has_slots = true;
          e.first_slot = state_[i].id;
          e.slot_scope = state_[i].vm ? MsrScope::kVm : MsrScope::kVcpu;
        }
      }
    }
    e.has_slots = e.has_slots || own_slots;
    for (uint64_t i = row.index; i <= row.last; ++i) {
      std::string name = index_name(row, static_cast<uint32_t>(i));
      if (own_slots) {
        const SlotId id = row.scope == MsrScope::kVm ? layout.AddVmSlot(name, row.reset)
                                                     : layout.AddVcpuSlot(name, row.reset);
        if (i == row.index) e.first_slot = id;
      }
      names_.push_back(std::move(name));
    }
    if (row.reset_hook != nullptr && e.has_slots && e.slot_scope == MsrScope::kVcpu) {
      reset_hooked_.push_back(entries_.size());
    }
    entries_.push_back(e);
    firsts_.push_back(row.index);
  }
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].after_rows) reserve(i);
  }
}

void TableHandler::OnVcpuReset(Vcpu& vcpu) {
  if (vcpu.id == 0) {
    for (const StateRef& s : state_) {
      if (s.has_bsp_reset) vcpu.slots[s.id] = s.bsp_reset;
    }
  }
  for (size_t i : reset_hooked_) {
    const Entry& e = entries_[i];
    for (uint64_t index = e.row.index; index <= e.row.last; ++index) {
      vcpu.slots[e.first_slot + (index - e.row.index)] =
          e.row.reset_hook(*this, e, static_cast<uint32_t>(index), vcpu.id);
    }
  }
}

const TableHandler::Entry* TableHandler::FindEntry(uint32_t index) const {
  // Over the packed first indices: the search touches a few cache lines, not every probed row.
  auto it = std::upper_bound(firsts_.begin(), firsts_.end(), index);
  if (it == firsts_.begin()) return nullptr;
  const Entry& e = entries_[static_cast<size_t>(it - firsts_.begin()) - 1];
  return index <= e.row.last ? &e : nullptr;
}

absl::StatusOr<MsrResult> TableHandler::Read(uint32_t index, ExitContext& ctx) {
  const Entry* e = FindEntry(index);
  if (e == nullptr) return MsrResult::Unsupported();
  if (e->row.read_hook != nullptr) return e->row.read_hook(*this, *e, index, ctx);
  return GenericRead(*e, index, ctx);
}

absl::StatusOr<MsrResult> TableHandler::Write(uint32_t index, uint64_t value, ExitContext& ctx) {
  const Entry* e = FindEntry(index);
  if (e == nullptr) return MsrResult::Unsupported();
  if (e->row.write_hook != nullptr) return e->row.write_hook(*this, *e, index, value, ctx);
  return GenericWrite(*e, index, value, ctx);
}

absl::string_view TableHandler::MsrName(uint32_t index) const {
  const Entry* e = FindEntry(index);
  if (e == nullptr) return {};
  return names_[e->first_name + (index - e->row.index)];
}

bool TableHandler::FeatureGated(const Entry& e, const ExitContext& ctx) const {
  if (e.row.requires_feature == Feature::kCount || profile_.Has(e.row.requires_feature)) {
    return false;
  }
  return !ctx.host_initiated() || (e.row.checks & kCheckFeatureGatesHost) != 0;
}

uint64_t& TableHandler::Slot(const Entry& e, uint32_t index, ExitContext& ctx) const {
  const SlotId id = e.first_slot + (index - e.row.index);
  return e.slot_scope == MsrScope::kVm ? ctx.vm_slot(id) : ctx.slot(id);
}

MsrResult TableHandler::GenericRead(const Entry& e, uint32_t index, ExitContext& ctx) {
  if (e.row.checks & kCheckWriteOnly) return MsrResult::Unsupported();
  if (FeatureGated(e, ctx)) return MsrResult::Gp();
  if ((e.row.checks & kCheckHostOnlyRead) && !ctx.host_initiated()) return MsrResult::Gp();
  if (!e.has_slots) return MsrResult::Ok(e.row.reset);
  return MsrResult::Ok(Slot(e, index, ctx));
}

absl::optional<uint64_t> TableHandler::CheckWrite(const Entry& e, uint32_t index, uint64_t value,
                                                  ExitContext& ctx, bool* ignore) {
  *ignore = false;
  const MsrRow& row = e.row;
  const bool host = ctx.host_initiated();
  if (row.checks & kCheckWritesIgnored) {
    if (!host || !(row.checks & kCheckHostOnlyWrite) || !e.has_slots) {
      *ignore = true;
      return value;
    }
  } else if ((row.checks & kCheckHostOnlyWrite) && !host) {
    return absl::nullopt;
  }
  if (row.checks & kCheckReservedIgnored) value &= ~row.reserved_mask;
  value &= ~(row.reserved_mask & row.dropped_mask);
  if (row.checks & kCheckCanonicalize) {
    value = CanonicalizeAddress(value, profile_.canonical_bits());
  }
  if ((row.checks & kCheckCanonical) && !IsCanonicalAddress(value, profile_.canonical_bits())) {
    return absl::nullopt;
  }
  if (value & row.reserved_mask) return absl::nullopt;
  const uint64_t old = e.has_slots ? Slot(e, index, ctx) : row.reset;
  if (!host && (row.checks & kCheckReadOnlyKept)) {
    value = (value & ~row.read_only_mask) | (old & row.read_only_mask);
  } else if (!host && ((old ^ value) & row.read_only_mask) != 0) {
    return absl::nullopt;
  }
  if ((row.checks & kCheckPatTypes) && !ValidPatValue(value)) return absl::nullopt;
  if (row.checks & kCheckMtrrTypes) {
    // Fixed-range MTRRs (no reserved bits) hold a type in every byte; the others in bits 7:0.
    const int bytes = row.reserved_mask == 0 ? 8 : 1;
    for (int i = 0; i < bytes; ++i) {
      if (!ValidMtrrType((value >> (8 * i)) & 0xff)) return absl::nullopt;
    }
  }
  if ((row.checks & kCheckLockBit) && !host && (old & 1)) return absl::nullopt;
  return value;
}

MsrResult TableHandler::GenericWrite(const Entry& e, uint32_t index, uint64_t value,
                                     ExitContext& ctx) {
  if (e.row.checks & kCheckReadOnly) return MsrResult::Unsupported();
  if (FeatureGated(e, ctx)) return MsrResult::Gp();
  bool ignore = false;
  const absl::optional<uint64_t> v = CheckWrite(e, index, value, ctx, &ignore);
  if (!v.has_value()) return MsrResult::Gp();
  if (!ignore && e.has_slots) Slot(e, index, ctx) = *v;
  return MsrResult::Ok();
}

absl::Status TableHandler::Register(Controller& controller) {
  for (const Entry& e : entries_) {
    if (!controller.InsertRange(e.row.index, e.row.last, this)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "cannot register %s at %#x-%#x: an index of the range already has a handler", e.row.name,
          e.row.index, e.row.last));
    }
  }
  return absl::OkStatus();
}

absl::Status InstallTableHandler(Controller& controller, std::unique_ptr<TableHandler> handler) {
  auto* raw = static_cast<TableHandler*>(controller.Adopt(std::move(handler)));
  return raw->Register(controller);
}

bool RowExists(const MsrRow& row, const CpuProfile& profile) {
  if (row.vendor_only != Vendor::kUnspecified && row.vendor_only != profile.vendor) return false;
  return row.requires_feature == Feature::kCount || profile.Has(row.requires_feature);
}

MsrRow ResolveRow(const MsrFamilyDef& family, const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = family.resolve != nullptr ? family.resolve(row, profile) : row;
  if (r.checks & kCheckMaxPhyAddr) r.reserved_mask |= MaxPhyAddrReservedBits(profile);
  return r;
}

std::vector<MsrRow> RowsToInstall(const MsrFamilyDef& family, const CpuProfile& profile) {
  const absl::Span<const MsrRow> rows = family.rows();
  std::vector<MsrRow> out;
  out.reserve(rows.size());
  for (const MsrRow& row : rows) {
    MsrRow r = ResolveRow(family, row, profile);  // Resolution may change the row's feature gate.
    // A resolved range may be empty on the profile.
    if (RowInstalled(r, profile) && r.last >= r.index) out.push_back(r);
  }
  return out;
}

}  // namespace msrtrace
