# Writes OUT, a header with the content of SCRIPT and FRAGMENT as string constants, so that
# kfleet-agent carries them (a builder needs no other kfleet file). Run by agent/CMakeLists.txt.
file(READ ${SCRIPT} script)
file(READ ${FRAGMENT} fragment)
file(WRITE ${OUT}.tmp
  "// Generated from agent/kernel/kfleet-kernel.sh and deploy/kernel/kfleet-guest.config.\n"
  "#pragma once\n"
  "namespace kfleet::agent {\n"
  "inline constexpr char kKernelScript[] = R\"kfleet_embed(${script})kfleet_embed\";\n"
  "inline constexpr char kGuestConfigFragment[] = R\"kfleet_embed(${fragment})kfleet_embed\";\n"
  "}  // namespace kfleet::agent\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
