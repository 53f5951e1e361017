"""The `extractor` world of lsm:plugin@0.1.0: the glue between lsm and normalize.py.

Every failure becomes an error string returned to lsm (the index's `on_error` policy
then decides); no exception leaves a call, since one would abort the instance.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.types import Entry, Term_Text

import normalize


def _terms(value: bytes, options: str) -> list[Term_Text]:
    opts = normalize.options(options)
    return [Term_Text(name) for name in normalize.city_names(value, opts)]


def _message(e: Exception) -> str:
    if isinstance(e, ValueError):
        return str(e)
    return f"city-normalizer failed: {type(e).__name__}: {e}"


class Extract(exports.Extract):
    def extract(self, key: str, value: bytes, options: str) -> list[Term_Text]:
        try:
            return _terms(value, options)
        except Exception as e:  # noqa: BLE001 - every error goes back as a string
            raise Err(_message(e)) from None

    def extract_batch(self, entries: list[Entry], options: str) -> list:
        results = []
        for entry in entries:
            try:
                results.append(Ok(_terms(entry.value, options)))
            except Exception as e:  # noqa: BLE001
                results.append(Err(_message(e)))
        return results
