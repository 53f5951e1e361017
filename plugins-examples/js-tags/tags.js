// An lsm index extractor (world `extractor` of lsm:plugin@0.1.0) in JavaScript.
//
// Options (the index's `extractor.options`):
//   field          where the tags are: a field name or a dotted path ["tags"]
//   integer_field  a numeric field whose value is also indexed, as an integer term
//                  [none]
//
// Every failure is returned to lsm as an error message (the index's `on_error` policy
// then decides): nothing is thrown out of a call except that message.

const KNOWN_OPTIONS = ["field", "integer_field"];
const utf8 = new TextDecoder("utf-8", { fatal: true });

// An index always passes the same options text: parse it once.
const parsedOptions = new Map();

function parsePath(name, option) {
  if (typeof name !== "string" || name === "" || name.split(".").some((p) => p === "")) {
    throw `option ${option} must be a field name or a dotted path such as "meta.tags"`;
  }
  return name.split(".");
}

function options(text) {
  let parsed = parsedOptions.get(text);
  if (parsed !== undefined) return parsed;
  let raw;
  try {
    raw = text.trim() === "" ? {} : JSON.parse(text);
  } catch (e) {
    throw `options are not JSON: ${e.message}`;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw 'options must be a JSON object, e.g. {"field": "tags"}';
  }
  const unknown = Object.keys(raw).filter((k) => !KNOWN_OPTIONS.includes(k));
  if (unknown.length > 0) {
    throw `unknown option(s) ${unknown.sort().join(", ")}; known: ${KNOWN_OPTIONS.join(", ")}`;
  }
  parsed = {
    field: raw.field ?? "tags",
    tags: parsePath(raw.field ?? "tags", "field"),
    integerField: raw.integer_field,
    integer: raw.integer_field === undefined ? null : parsePath(raw.integer_field, "integer_field"),
  };
  if (parsedOptions.size >= 64) parsedOptions.clear();
  parsedOptions.set(text, parsed);
  return parsed;
}

// The value at `path` in `doc`, or undefined where the path does not lead anywhere.
function lookup(doc, path) {
  let found = doc;
  for (const part of path) {
    if (found === null || typeof found !== "object" || Array.isArray(found)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(found, part)) return undefined;
    found = found[part];
  }
  return found;
}

function kind(value) {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

// A tag as indexed: trimmed, lowercased, inner white space collapsed.
function normalizeTag(tag) {
  return tag.trim().toLowerCase().split(/\s+/).join(" ");
}

function tagTerms(doc, opts, terms) {
  const found = lookup(doc, opts.tags);
  if (found === undefined || found === null) return;
  const list = Array.isArray(found) ? found : [found];
  const seen = new Set();
  list.forEach((tag, i) => {
    let text;
    if (typeof tag === "string") text = normalizeTag(tag);
    else if (typeof tag === "number" || typeof tag === "boolean") text = String(tag);
    else if (tag === null) return;
    else throw `${opts.field}[${i}] is ${kind(tag)}; tags are text`;
    if (text !== "" && !seen.has(text)) {
      seen.add(text);
      terms.push({ tag: "text", val: text });
    }
  });
}

function integerTerms(doc, opts, terms) {
  if (opts.integer === null) return;
  const found = lookup(doc, opts.integer);
  if (found === undefined || found === null) return;
  const list = Array.isArray(found) ? found : [found];
  for (const n of list) {
    if (n === null) continue;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw `${opts.integerField} holds ${typeof n === "number" ? n : kind(n)}, not an integer`;
    }
    // JSON numbers beyond 2^53 have already lost digits in JSON.parse: refuse them
    // rather than index a neighbouring value.
    if (!Number.isSafeInteger(n)) {
      throw `${opts.integerField} holds ${n}, beyond the integers JavaScript reads exactly (2^53)`;
    }
    terms.push({ tag: "integer", val: BigInt(n) });
  }
}

function terms(value, optionsText) {
  const opts = options(optionsText);
  let doc;
  try {
    doc = JSON.parse(utf8.decode(value));
  } catch (e) {
    throw `the value is not JSON text (this extractor reads instances whose codec is json): ${e.message}`;
  }
  const out = [];
  tagTerms(doc, opts, out);
  integerTerms(doc, opts, out);
  return out;
}

// What a failure becomes: a message for the user, never an exception object.
function message(e) {
  if (typeof e === "string") return e;
  return `tags failed: ${e && e.message ? e.message : String(e)}`;
}

export const extract = {
  extract(key, value, optionsText) {
    try {
      return terms(value, optionsText);
    } catch (e) {
      throw message(e);
    }
  },

  extractBatch(entries, optionsText) {
    return entries.map((entry) => {
      try {
        return { tag: "ok", val: terms(entry.value, optionsText) };
      } catch (e) {
        return { tag: "err", val: message(e) };
      }
    });
  },
};
