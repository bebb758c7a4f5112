/** The part graph as Graphviz DOT or Mermaid text. */
import type { Project } from './project.js';

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const mid = (s: string) => 'p_' + s.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0).toString(16)}_`);

export function toDot(p: Project): string {
  let s = 'digraph kiln {\n  rankdir=LR;\n  node [shape=box, fontname="sans-serif"];\n';
  for (const n of p.order) {
    const part = p.parts.get(n)!;
    const sel = p.selected.includes(n);
    s += `  ${q(n)} [label=${q(`${n}\\n${part.recipe.kind}`)}${sel ? ', style=bold' : ''}];\n`;
  }
  for (const n of p.order) for (const d of p.parts.get(n)!.deps.keys()) s += `  ${q(d)} -> ${q(n)};\n`;
  return s + '}\n';
}

export function toMermaid(p: Project): string {
  let s = 'graph LR\n';
  for (const n of p.order) s += `  ${mid(n)}["${n.replace(/"/g, '#quot;')}<br/>${p.parts.get(n)!.recipe.kind}"]\n`;
  for (const n of p.order) for (const d of p.parts.get(n)!.deps.keys()) s += `  ${mid(d)} --> ${mid(n)}\n`;
  return s;
}
