"""Normalization of place names, independent of WebAssembly (plain Python 3.11+).

`normalize("  São   PAULO ")` is `"sao paulo"`: the accents are stripped, the
case is folded and runs of white space become one space. Letters that Unicode does
not decompose into a base letter and an accent (ø, ł, đ, æ, ...) are spelled with
plain Latin letters, so that "Łódź" and "Lodz" or "København" and "Kobenhavn" meet
in the index.
"""

import json
import unicodedata

# Letters without a canonical decomposition, spelled the way they usually are in
# plain ASCII. Applied after case folding, so only lowercase forms are needed.
_SPELLED = str.maketrans(
    {
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŀ": "l",
        "ŧ": "t",
        "ʼ": "'",
        "’": "'",
        "‘": "'",
    }
)


def normalize(text: str) -> str:
    """The normalized form of `text` (may be empty)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    spelled = stripped.translate(_SPELLED)
    # Recompose what is left (non-Latin scripts keep their own letters).
    return " ".join(unicodedata.normalize("NFC", spelled).split())


class Options:
    """The index's options: `{"field": "city"}`; `field` may be a dotted path."""

    def __init__(self, text: str):
        try:
            raw = json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise ValueError(f"options are not JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ValueError("options must be a JSON object, e.g. {\"field\": \"city\"}")
        unknown = sorted(set(raw) - {"field"})
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: field")
        field = raw.get("field", "city")
        if not isinstance(field, str) or not field or any(not p for p in field.split(".")):
            raise ValueError(
                "option field must be a field name or a dotted path such as "
                "\"address.city\""
            )
        self.path = field.split(".")
        self.field = field


_OPTIONS: dict[str, Options] = {}


def options(text: str) -> Options:
    """Parses `text` once: an index always passes the same options."""
    parsed = _OPTIONS.get(text)
    if parsed is None:
        parsed = Options(text)
        if len(_OPTIONS) >= 64:
            _OPTIONS.clear()
        _OPTIONS[text] = parsed
    return parsed


def city_names(value: bytes, opts: Options) -> list[str]:
    """The normalized names found at the option's field of a JSON `value`.

    A missing field, `null` or a name that normalizes to nothing gives no term; a
    list of names gives one term per name. Raises ValueError with a message meant for
    the user otherwise.
    """
    try:
        document = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(
            "the value is not UTF-8 JSON text (this extractor reads instances whose "
            "codec is json)"
        ) from None
    except ValueError as e:
        raise ValueError(f"the value is not JSON: {e}") from None
    found = document
    for part in opts.path:
        if not isinstance(found, dict) or part not in found:
            return []
        found = found[part]
    names = found if isinstance(found, list) else [found]
    result = []
    for name in names:
        if name is None:
            continue
        if not isinstance(name, str):
            raise ValueError(
                f"field {opts.field} holds {_kind(name)}, not text"
            )
        normalized = normalize(name)
        if normalized and normalized not in result:
            result.append(normalized)
    return result


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
