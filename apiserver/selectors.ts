// Label and field selectors with Kubernetes' syntax and semantics:
//   labels: a=b, a==b, a!=b, a in (x,y), a notin (x,y), a, !a, a>1, a<1 (comma = AND)
//   fields: a=b, a==b, a!=b (comma = AND; "\," "\=" "\\" escape)
// `!=` and `notin` also match objects that do not have the label, as in Kubernetes.
import type { LabelSelector } from "./types.ts";

export type LabelOp = "=" | "!=" | "in" | "notin" | "exists" | "!" | ">" | "<";
export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export class SelectorError extends Error {}

const WORD = /[A-Za-z0-9._\/-]/;

function tokenize(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === " " || c === "\t") {
      i++;
    } else if (c === "(" || c === ")" || c === ",") {
      out.push(c);
      i++;
    } else if (c === "=" && s[i + 1] === "=") {
      out.push("==");
      i += 2;
    } else if (c === "!" && s[i + 1] === "=") {
      out.push("!=");
      i += 2;
    } else if (c === "=" || c === "!" || c === ">" || c === "<") {
      out.push(c);
      i++;
    } else if (WORD.test(c)) {
      let j = i;
      while (j < s.length && WORD.test(s[j])) j++;
      out.push(s.slice(i, j));
      i = j;
    } else {
      throw new SelectorError(`unable to parse requirement: found '${c}', not a valid character in a label selector`);
    }
  }
  return out;
}

const OPERATORS = new Set(["=", "==", "!=", "!", ">", "<", "(", ")", ","]);
const isWord = (t: string | undefined): t is string => t !== undefined && !OPERATORS.has(t);

const KEY_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Problems with a label key ([] when valid), worded as Kubernetes' IsQualifiedName. */
export function labelKeyProblems(key: string): string[] {
  const parts = key.split("/");
  let name = key;
  const problems: string[] = [];
  if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (prefix.length === 0) problems.push("prefix part must be non-empty");
    else if (prefix.length > 253) problems.push("prefix part must be no more than 253 characters");
    else if (!DNS_SUBDOMAIN.test(prefix))
      problems.push(
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      );
  }
  if (name.length === 0) problems.push("name part must be non-empty");
  else if (name.length > 63) problems.push("name part must be no more than 63 characters");
  else if (!KEY_NAME.test(name))
    problems.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  return problems;
}

/** Problems with a label value ([] when valid). */
export function labelValueProblems(v: string): string[] {
  const problems: string[] = [];
  if (v.length > 63) problems.push("must be no more than 63 characters");
  if (!LABEL_VALUE.test(v))
    problems.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  return problems;
}

function checkKey(key: string): void {
  const p = labelKeyProblems(key);
  if (p.length) throw new SelectorError(`unable to parse requirement: key: Invalid value: ${JSON.stringify(key)}: ${p.join("; ")}`);
}
function checkValue(v: string): void {
  const p = labelValueProblems(v);
  if (p.length) throw new SelectorError(`unable to parse requirement: values[0]: Invalid value: ${JSON.stringify(v)}: ${p.join("; ")}`);
}

/** Parses a label selector string; "" selects everything. Throws SelectorError on bad syntax. */
export function parseLabelSelector(s: string): LabelRequirement[] {
  const toks = tokenize(s);
  const reqs: LabelRequirement[] = [];
  let i = 0;
  const expected = (what: string) => new SelectorError(`unable to parse requirement: found '${toks[i] ?? ""}', expected: ${what}`);
  while (i < toks.length) {
    if (toks[i] === "!") {
      i++;
      const key = toks[i];
      if (!isWord(key)) throw expected("identifier after '!'");
      checkKey(key);
      reqs.push({ key, op: "!", values: [] });
      i++;
    } else {
      const key = toks[i];
      if (!isWord(key)) throw expected("identifier");
      checkKey(key);
      i++;
      const op = toks[i];
      if (op === undefined || op === ",") {
        reqs.push({ key, op: "exists", values: [] });
      } else if (op === "=" || op === "==" || op === "!=") {
        i++;
        let value = "";
        if (isWord(toks[i]) && toks[i] !== "in" && toks[i] !== "notin") value = toks[i++];
        else if (toks[i] === "in" || toks[i] === "notin") value = toks[i++];
        checkValue(value);
        reqs.push({ key, op: op === "!=" ? "!=" : "=", values: [value] });
      } else if (op === ">" || op === "<") {
        i++;
        const value = toks[i];
        if (!isWord(value) || !/^-?\d+$/.test(value)) throw expected("an integer value");
        i++;
        reqs.push({ key, op, values: [value] });
      } else if (op === "in" || op === "notin") {
        i++;
        if (toks[i] !== "(") throw expected("'('");
        i++;
        const values: string[] = [];
        while (toks[i] !== ")") {
          if (toks[i] === undefined) throw expected("')'");
          if (toks[i] === ",") {
            i++;
            continue;
          }
          if (!isWord(toks[i])) throw expected("a value");
          checkValue(toks[i]);
          values.push(toks[i++]);
        }
        i++;
        if (values.length === 0) throw new SelectorError(`unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`);
        reqs.push({ key, op, values });
      } else {
        throw expected("'=', '!=', '==', 'in', 'notin'");
      }
    }
    if (i < toks.length) {
      if (toks[i] !== ",") throw expected("','");
      i++;
      if (i >= toks.length) throw expected("identifier after ','");
    }
  }
  return reqs;
}

export function matchRequirement(r: LabelRequirement, labels: Record<string, string> | undefined): boolean {
  const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels![r.key] : undefined;
  switch (r.op) {
    case "=":
      return has && v === r.values[0];
    case "!=":
      return !has || v !== r.values[0];
    case "in":
      return has && r.values.includes(v!);
    case "notin":
      return !has || !r.values.includes(v!);
    case "exists":
      return has;
    case "!":
      return !has;
    case ">":
    case "<": {
      if (!has || !/^-?\d+$/.test(v!)) return false;
      const n = Number(v);
      const want = Number(r.values[0]);
      return r.op === ">" ? n > want : n < want;
    }
  }
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  for (const r of reqs) if (!matchRequirement(r, labels)) return false;
  return true;
}

/** Requirements of a structured LabelSelector (Deployments, ReplicaSets). An empty selector matches everything. */
export function labelSelectorRequirements(sel: LabelSelector | undefined): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) reqs.push({ key, op: "=", values: [value] });
  for (const e of sel?.matchExpressions ?? []) {
    const op: LabelOp = e.operator === "In" ? "in" : e.operator === "NotIn" ? "notin" : e.operator === "Exists" ? "exists" : "!";
    reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return reqs;
}

/** A Service-style selector (map): matches when every pair is present. An empty map matches nothing here. */
export function selectsLabels(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector);
  if (entries.length === 0) return false;
  if (!labels) return false;
  for (const [k, v] of entries) if (labels[k] !== v) return false;
  return true;
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && i + 1 < s.length) {
      cur += s[i] + s[i + 1];
      i++;
    } else if (s[i] === sep) {
      out.push(cur);
      cur = "";
    } else cur += s[i];
  }
  out.push(cur);
  return out;
}

function unescapeField(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}

/** Parses a field selector ("spec.nodeName=n1,status.phase!=Failed"). */
export function parseFieldSelector(s: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  for (const part of splitUnescaped(s, ",")) {
    const p = part.trim();
    if (!p) continue;
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^([^=!]+)!=(.*)$/))) out.push({ field: m[1].trim(), op: "!=", value: unescapeField(m[2].trim()) });
    else if ((m = p.match(/^([^=!]+)==?(.*)$/))) out.push({ field: m[1].trim(), op: "=", value: unescapeField(m[2].trim()) });
    else throw new SelectorError(`invalid selector: '${p}'; can't understand '${p}'`);
  }
  return out;
}

export function matchFields(reqs: FieldRequirement[], get: (field: string) => string | undefined): boolean {
  for (const r of reqs) {
    const v = get(r.field) ?? "";
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}
