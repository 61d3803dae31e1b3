#!/usr/bin/env python3
"""Writes the emulator's opcode-name tables (plugins/amd_kfd/emulator/<family>_opcodes.cpp) by asking
llvm-mc's disassembler what each opcode of each encoding is: one word (or two) per opcode with the
other fields set to values every instruction of that encoding accepts. Usage:
    scripts/gen_gcn_opcodes.py gfx942 gfx9 > plugins/amd_kfd/emulator/gfx9_opcodes.cpp
    scripts/gen_gcn_opcodes.py gfx1100 gfx11 > plugins/amd_kfd/emulator/gfx11_opcodes.cpp"""
import re
import subprocess
import sys

mcpu, family = sys.argv[1], sys.argv[2]
MC = "llvm-mc-19"


def disassemble(encodings):
    lines = [",".join("0x%02x" % b for b in b"".join(w.to_bytes(4, "little") for w in ws)) for ws in encodings]
    run = subprocess.run([MC, "--disassemble", "-arch=amdgcn", "-mcpu=" + mcpu, "-show-encoding"],
                         input=("\n".join(lines) + "\n").encode(), capture_output=True, check=False)
    seen = {}
    for line in run.stdout.decode().splitlines():
        m = re.match(r"\s+(\S+).*?; encoding: \[(.*)\]", line)
        if m:
            seen[m.group(2).replace(" ", "")] = m.group(1)
    return [seen.get(line) for line in lines]


def vop3_srcs(s0, s1, s2):
    return s0 | (s1 << 9) | (s2 << 18)


# Each encoding: opcode count and templates (tried in order until llvm-mc accepts one).
GFX9 = {
    "Sop2": (0x60, [lambda op: [(2 << 30) | (op << 23) | (2 << 16) | (6 << 8) | 4]]),
    "Sopk": (0x1d, [lambda op: [(0xb << 28) | (op << 23) | (1 << 16) | 0x10]]),
    "Sop1": (256, [lambda op: [0xBE800000 | (1 << 16) | (op << 8) | 2], lambda op: [0xBE800000 | (2 << 16) | (op << 8) | 4]]),
    "Sopc": (128, [lambda op: [0xBF000000 | (op << 16) | (6 << 8) | 4]]),
    "Sopp": (128, [lambda op: [0xBF800000 | (op << 16)]]),
    "Smem": (256, [lambda op, g=g: [(0x30 << 26) | (op << 18) | (1 << 17) | (4 << 6) | 1 | g, 0x10] for g in (0, 1 << 16)]),
    "Vop2": (0x3e, [lambda op: [(op << 25) | (2 << 17) | (2 << 9) | 0x104]]),
    "Vop1": (256, [lambda op: [(0x3f << 25) | (2 << 17) | (op << 9) | 0x104], lambda op: [(0x3f << 25) | (op << 9)]]),
    "Vopc": (256, [lambda op: [(0x3e << 25) | (op << 17) | (2 << 9) | 0x104]]),
    "Vop3": (0x380, [lambda op, a=a: [(0x34 << 26) | (op << 16) | 2, a]
                     for a in (vop3_srcs(0x104, 0, 0), vop3_srcs(0x104, 0x106, 0), vop3_srcs(0x104, 0x106, 0x108),
                               vop3_srcs(0x104, 0x106, 0x6a), 0)]),
    "Vop3p": (128, [lambda op, a=a: [0xD3800000 | (op << 16) | (1 << 14) | 8, a | (3 << 27)]
                    for a in (vop3_srcs(0x102, 0x104, 0), vop3_srcs(0x102, 0x104, 0x106), vop3_srcs(0x100, 0x102, 8))]
             + [lambda op, hi=hi, acc=acc, s1=s1: [0xD3800000 | (op << 16) | acc | hi, vop3_srcs(0x100, s1, 0) | ((3 << 27) if hi else 0)]
                for hi in (1 << 14, 0) for acc in (1 << 15, 0) for s1 in (0x102, 0)]),
    "Ds": (256, [lambda op, f=f: [(0x36 << 26) | (op << 17), f]
                 for f in (2 | (1 << 24), 2 | (3 << 8), 2 | (3 << 8) | (4 << 16), 2 | (3 << 8) | (4 << 16) | (1 << 24),
                           2 | (3 << 8) | (1 << 24), 1 << 24, 0, 2)]),
    "Flat": (128, [lambda op, f=f, g=g: [(0x37 << 26) | (op << 18) | g, f] for f in (4, 4 | (2 << 8)) for g in (0, 1 << 16)]),
    "Global": (128, [lambda op, f=f, g=g: [(0x37 << 26) | (op << 18) | (2 << 14) | g, f]
                     for f in (4 | (0x7f << 16), 4 | (2 << 8) | (0x7f << 16)) for g in (0, 1 << 16)]),
}

# gfx11 (RDNA3): the scalar and short vector formats keep gfx9's layouts; SMEM, VOP3, VOP3P, DS and
# FLAT move their fields (the ISA's microcode formats); NULL is 124, off in SADDR too.
GFX11 = {
    "Sop2": GFX9["Sop2"], "Sopk": GFX9["Sopk"], "Sop1": GFX9["Sop1"], "Sopc": GFX9["Sopc"], "Sopp": GFX9["Sopp"],
    "Smem": (256, [lambda op, g=g: [(0x3d << 26) | (op << 18) | g | (4 << 6), (0x7c << 25) | 0x10] for g in (0, 1 << 14)]),
    "Vop2": (0x3e, GFX9["Vop2"][1] + [lambda op: [(op << 25) | (2 << 17) | (2 << 9) | 0x104, 0x3f800000]]),  # + fmaak/fmamk's K
    "Vop1": GFX9["Vop1"], "Vopc": GFX9["Vopc"],
    "Vop3": (0x400, [lambda op, a=a: [(0x35 << 26) | (op << 16) | 2, a]
                     for a in (vop3_srcs(0x104, 0, 0), vop3_srcs(0x104, 0x106, 0), vop3_srcs(0x104, 0x106, 0x108),
                               vop3_srcs(0x104, 0x106, 0x6a), 0)]
             + [lambda op: [(0x35 << 26) | (op << 16) | (0x6a << 8) | 2, vop3_srcs(0x104, 0x106, 0x6a)],
                lambda op: [(0x35 << 26) | (op << 16) | (0x6a << 8) | 2, vop3_srcs(0x104, 0x106, 0)]]),
    "Vop3p": (128, [lambda op, a=a: [0xCC000000 | (op << 16) | (1 << 14) | 8, a | (3 << 27)]
                    for a in (vop3_srcs(0x102, 0x104, 0), vop3_srcs(0x102, 0x104, 0x106), vop3_srcs(0x108, 0x110, 0))]
             + [lambda op, hi=hi: [0xCC000000 | (op << 16) | hi, vop3_srcs(0x108, 0x110, 0x100) | ((3 << 27) if hi else 0)] for hi in (1 << 14, 0)]),
    "Ds": (256, [lambda op, f=f: [(0x36 << 26) | (op << 18), f]
                 for f in (2 | (1 << 24), 2 | (3 << 8), 2 | (3 << 8) | (4 << 16), 2 | (3 << 8) | (4 << 16) | (1 << 24),
                           2 | (3 << 8) | (1 << 24), 1 << 24, 0, 2)]),
    "Flat": (128, [lambda op, f=f, g=g: [(0x37 << 26) | (op << 18) | g, f] for f in (4 | (0x7c << 16), 4 | (2 << 8) | (0x7c << 16)) for g in (0, 1 << 14)]),
    "Global": (128, [lambda op, f=f, g=g: [(0x37 << 26) | (op << 18) | (2 << 16) | g, f]
                     for f in (4 | (0x7c << 16), 4 | (2 << 8) | (0x7c << 16)) for g in (0, 1 << 14)]),
}
ENCODINGS = {"gfx9": GFX9, "gfx11": GFX11}[family]
# VOP3's copies of VOP2 and VOP1 start at 0x100 and 0x140 (gfx9) or 0x100 and 0x180 (gfx11).
VOP1_IN_VOP3 = {"gfx9": 0x140, "gfx11": 0x180}[family]

tables = {}
for name, (count, templates) in ENCODINGS.items():
    found = {}
    for template in templates:
        todo = [op for op in range(count) if op not in found]
        for op, mnemonic in zip(todo, disassemble([template(op) for op in todo])):
            if mnemonic:
                found[op] = re.sub(r"_(e32|e64|sdwa|dpp)$", "", mnemonic)
    tables[name] = found

# VOP3 repeats VOPC (0x000-0x0ff), VOP2 (0x100-0x13f) and VOP1 (0x140-0x1bf): the decoder maps those
# ranges itself, so only VOP3's own opcodes are listed (after checking the ranges agree).
for op, mnemonic in list(tables["Vop3"].items()):
    end = VOP1_IN_VOP3 + 0x80
    base = (tables["Vopc"].get(op) if op < 0x100 else tables["Vop2"].get(op - 0x100) if op < 0x140
            else tables["Vop1"].get(op - VOP1_IN_VOP3) if VOP1_IN_VOP3 <= op < end else None)
    if op < end and base is not None:
        if base != mnemonic:
            sys.exit("VOP3 opcode 0x%x is %s, not the promoted %s" % (op, mnemonic, base))
        del tables["Vop3"][op]

print("// %s opcode names by encoding, as llvm-mc's disassembler names them for %s. Generated by" % (family, mcpu))
print("// scripts/gen_gcn_opcodes.py; regenerate rather than edit.")
print('#include "gcn_decode.h"\n\nnamespace lathe::amd::emu {\n')
print("const std::vector<OpcodeList>& %s_opcodes() {" % family)
print("  static const std::vector<OpcodeList> lists = {")
for name, found in tables.items():
    entries = ["%x:%s" % (op, found[op]) for op in sorted(found)]
    chunks, line = [], ""
    for e in entries:
        if len(line) + len(e) > 96:
            chunks.append(line)
            line = ""
        line += e + " "
    chunks.append(line)
    print("      {Encoding::%s," % name)
    for c in chunks:
        print('       "%s"' % c)
    print("      },")
print("  };\n  return lists;\n}\n\n}  // namespace lathe::amd::emu")
