//! Input and output helpers the client commands share: reading a file argument (or
//! standard input for `-`) and printing an aligned table.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// The text of `path`, or of standard input when it is `-`.
pub fn read_text(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Prints `header` and `rows` as left-aligned columns two spaces apart, each column as
/// wide as its widest cell, trailing spaces trimmed.
pub fn print_table<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    out: &mut dyn Write,
) -> Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
