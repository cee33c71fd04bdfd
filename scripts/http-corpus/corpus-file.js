// The corpus file format (test/fixtures/http-corpus/*.jsonl), shared by the scripts that write it:
// one JSON object per line, the raw request bytes as strings of one character per byte (latin1),
// with every byte outside printable ASCII written as a \u00XX escape so the files stay ASCII and
// reviewable. Fields:
//   id      unique, stable
//   source  where the case comes from (a public test suite and its file and case, an RFC section,
//           or the generator and its family)
//   parts   the bytes, in the writes they are sent in (a pause between writes makes each its own read)
//   expect  optional: what Weir must answer, in order: "up" for a request answered by the upstream,
//           a status for Weir's own answer; a trailing "..." allows more answers after these
//   rule    optional: the RFC rule that decides the case (said where Weir and nginx disagree)
//   nginx   optional: what nginx 1.x does with it, when that differs from Weir
//   note    optional: a word for the reader
import { writeFileSync } from "node:fs";

export function encodeBytes(s) {
  return JSON.stringify(s).replace(/[\u007f-\u00ff]/g, (c) => "\\u00" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

export function caseLine(c) {
  const fields = [];
  for (const [k, v] of Object.entries(c)) {
    if (v === undefined) continue;
    if (k === "parts") fields.push(`"parts":[${v.map(encodeBytes).join(",")}]`);
    else fields.push(`${JSON.stringify(k)}:${k === "source" || k === "note" || k === "rule" || k === "nginx" ? encodeBytes(v) : JSON.stringify(v)}`);
  }
  return "{" + fields.join(",") + "}";
}

export function writeCases(file, cases) {
  const ids = new Set();
  for (const c of cases) {
    if (ids.has(c.id)) throw new Error(`duplicate case id ${c.id}`);
    ids.add(c.id);
    for (const p of c.parts) if (/[^\u0000-\u00ff]/.test(p)) throw new Error(`case ${c.id} has a character that is not a byte`);
  }
  writeFileSync(file, cases.map(caseLine).join("\n") + "\n");
  console.error(`${file}: ${cases.length} cases`);
}
