//! The `lsm` command line: the embedded REPL.
