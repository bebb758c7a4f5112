/**
 * The kernel-ABI check for prebuilt modules: every undefined symbol of a .ko must be exported by
 * the target kernel (its Module.symvers) or by another module of the same package, and with
 * CONFIG_MODVERSIONS the CRC the module recorded (its __versions section) must equal the kernel's.
 * Read from the ELF directly (64-bit little-endian, what x86_64 and arm64 modules are).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface SymversEntry {
  crc: number;
  module: string;
  export: string;
}

/** Module.symvers: CRC<TAB>symbol<TAB>module<TAB>export type[<TAB>namespace] */
export function parseSymvers(text: string): Map<string, SymversEntry> {
  const m = new Map<string, SymversEntry>();
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length < 4) continue;
    m.set(f[1]!, { crc: Number.parseInt(f[0]!, 16) >>> 0, module: f[2]!, export: f[3]! });
  }
  return m;
}

export interface KoSymbols {
  undefined: string[];
  /** symbols the module exports (__ksymtab_NAME) */
  exported: string[];
  /** __versions: symbol -> CRC */
  versions: Map<string, number>;
}

/** undefined and exported symbols and the __versions CRCs of a .ko (ELF64 LE) */
export function readKo(file: string): KoSymbols {
  const b = readFileSync(file);
  const bad = (why: string) => new Error(`${basename(file)}: not a 64-bit little-endian ELF module (${why})`);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw bad('no ELF magic');
  if (b[4] !== 2 || b[5] !== 1) throw bad('ELF class/data');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const sec = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)), link: b.readUInt32LE(o + 0x28), entsize: Number(b.readBigUInt64LE(o + 0x38)) };
  };
  const cstr = (off: number) => {
    const end = b.indexOf(0, off);
    return b.toString('latin1', off, end < 0 ? b.length : end);
  };
  const shstr = sec(shstrndx);
  const sections = Array.from({ length: shnum }, (_, i) => ({ ...sec(i), nameStr: cstr(shstr.offset + sec(i).name) }));
  const out: KoSymbols = { undefined: [], exported: [], versions: new Map() };
  const symtab = sections.find((s) => s.type === 2);
  if (symtab) {
    const strtab = sections[symtab.link]!;
    const n = symtab.size / (symtab.entsize || 24);
    for (let i = 1; i < n; i++) {
      const o = symtab.offset + i * 24;
      const name = cstr(strtab.offset + b.readUInt32LE(o));
      const info = b[o + 4]!;
      const shndx = b.readUInt16LE(o + 6);
      const bind = info >> 4;
      if (!name) continue;
      if (shndx === 0 && (bind === 1 || bind === 2)) out.undefined.push(name);
      else if (name.startsWith('__ksymtab_') && shndx !== 0) out.exported.push(name.slice('__ksymtab_'.length));
    }
  }
  const ver = sections.find((s) => s.nameStr === '__versions');
  if (ver) {
    // struct modversion_info { unsigned long crc; char name[64 - sizeof(unsigned long)]; }
    for (let o = ver.offset; o + 64 <= ver.offset + ver.size; o += 64) {
      const crc = Number(b.readBigUInt64LE(o) & 0xffffffffn);
      const nameEnd = b.indexOf(0, o + 8);
      out.versions.set(b.toString('latin1', o + 8, Math.min(nameEnd < 0 ? o + 64 : nameEnd, o + 64)), crc);
    }
  }
  out.undefined.sort();
  out.exported.sort();
  return out;
}

export interface SymbolProblem {
  module: string;
  symbol: string;
  problem: 'missing' | 'crc';
  detail: string;
}

/** Symbols a set of modules needs that the kernel (symvers) and the set itself do not export,
 *  and CRC mismatches (module __versions vs Module.symvers). */
export function checkModules(kos: string[], symvers: Map<string, SymversEntry>): SymbolProblem[] {
  const mods = kos.map((f) => ({ file: f, syms: readKo(f) }));
  const own = new Set(mods.flatMap((m) => m.syms.exported));
  const problems: SymbolProblem[] = [];
  for (const m of mods) {
    const name = basename(m.file);
    for (const s of m.syms.undefined) {
      if (own.has(s)) continue;
      const k = symvers.get(s);
      if (!k) {
        problems.push({ module: name, symbol: s, problem: 'missing', detail: `${name} needs ${s}, which the kernel does not export` });
        continue;
      }
      const c = m.syms.versions.get(s);
      if (c !== undefined && c !== k.crc) problems.push({ module: name, symbol: s, problem: 'crc', detail: `${name}: ${s} has CRC 0x${c.toString(16).padStart(8, '0')} in the module, 0x${k.crc.toString(16).padStart(8, '0')} in the kernel` });
    }
    // the CRCs of symbols the module records without an undefined reference (module_layout)
    for (const [s, c] of m.syms.versions) {
      if (m.syms.undefined.includes(s) || own.has(s)) continue;
      const k = symvers.get(s);
      if (k && k.crc !== c) problems.push({ module: name, symbol: s, problem: 'crc', detail: `${name}: ${s} has CRC 0x${c.toString(16).padStart(8, '0')} in the module, 0x${k.crc.toString(16).padStart(8, '0')} in the kernel` });
    }
  }
  return problems;
}
