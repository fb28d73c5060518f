//! Tables of text and numbers: HTML for notebooks, aligned plain text for terminals and logs.

use std::fmt;

use crate::render;
use crate::{Error, Result};

/// One cell: text, an integer, or a real number.
///
/// Numbers are right-aligned; reals show four significant digits (`27.53`, `0.9300`, `1.235e-7`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text, left-aligned.
    Text(String),
    /// Any integer type, shown in full.
    Integer(i128),
    /// `f32` or `f64`, shown to four significant digits.
    Real(f64),
}

impl Cell {
    fn is_number(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(text) => f.write_str(text),
            Cell::Integer(n) => write!(f, "{n}"),
            Cell::Real(x) if !x.is_finite() => write!(f, "{x}"),
            Cell::Real(x) if *x == 0.0 => f.write_str("0"),
            Cell::Real(x) => {
                let magnitude = x.abs().log10().floor();
                if (-3.0..6.0).contains(&magnitude) {
                    let decimals = (3.0 - magnitude).max(0.0) as usize;
                    write!(f, "{x:.decimals$}")
                } else {
                    write!(f, "{x:.3e}")
                }
            }
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_string())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Self {
        Cell::Text(text.clone())
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Real(x)
    }
}

impl From<f32> for Cell {
    fn from(x: f32) -> Self {
        Cell::Real(f64::from(x))
    }
}

macro_rules! integer_cells {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(n: $t) -> Self {
                Cell::Integer(n as i128)
            }
        }
    )*};
}
integer_cells!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// Anything that can be one table row: a tuple of cells of mixed types (`("rank 5", 5, 0.93)`), or
/// a vector, array or slice of one type.
pub trait Row {
    /// The row's cells, left to right.
    fn cells(self) -> Vec<Cell>;
}

impl<T: Into<Cell>> Row for Vec<T> {
    fn cells(self) -> Vec<Cell> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<Cell>, const N: usize> Row for [T; N] {
    fn cells(self) -> Vec<Cell> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<Cell> + Clone> Row for &[T] {
    fn cells(self) -> Vec<Cell> {
        self.iter().cloned().map(Into::into).collect()
    }
}

macro_rules! tuple_rows {
    ($(($($name:ident),+)),+) => {$(
        impl<$($name: Into<Cell>),+> Row for ($($name,)+) {
            #[allow(non_snake_case)]
            fn cells(self) -> Vec<Cell> {
                let ($($name,)+) = self;
                vec![$($name.into()),+]
            }
        }
    )+};
}
tuple_rows!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

/// A table with a header row: shown as HTML in a notebook, as aligned text by `Display`.
///
/// ```
/// let mut table = viz::Table::new(["rank", "storage", "PSNR (dB)"]);
/// table.row(("rank 5", 5 * 1025, 21.4371))?;
/// table.row(("rank <50>", 50 * 1025, 30.0))?;
/// assert_eq!(
///     table.to_string(),
///     "rank       storage  PSNR (dB)\n\
///      ---------  -------  ---------\n\
///      rank 5        5125      21.44\n\
///      rank <50>    51250      30.00\n"
/// );
/// assert!(table.to_html().contains("<td>rank &lt;50&gt;</td>"));
///
/// let error = table.row(("too", "short")).unwrap_err();
/// assert_eq!(error.to_string(), "table row 2 has 2 cells but the table has 3 columns");
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row, which must have one cell per column. Returns the table, so rows chain:
    /// `table.row((1, 2.0))?.row((2, 4.0))?;`.
    pub fn row(&mut self, row: impl Row) -> Result<&mut Self> {
        let cells = row.cells();
        if cells.len() != self.headers.len() {
            return Err(Error::RowLength {
                row: self.rows.len(),
                cells: cells.len(),
                columns: self.headers.len(),
            });
        }
        self.rows.push(cells);
        Ok(self)
    }

    /// Number of rows, the header not counted.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as an HTML `<table>`, text escaped, numbers right-aligned.
    pub fn to_html(&self) -> String {
        let mut html = String::from("<table>\n<thead><tr>");
        for (column, header) in self.headers.iter().enumerate() {
            let align = if self.is_numeric(column) {
                r#" style="text-align:right""#
            } else {
                ""
            };
            html.push_str(&format!("<th{align}>{}</th>", escape_html(header)));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            html.push_str("<tr>");
            for cell in row {
                let align = if cell.is_number() {
                    r#" style="text-align:right""#
                } else {
                    ""
                };
                html.push_str(&format!(
                    "<td{align}>{}</td>",
                    escape_html(&cell.to_string())
                ));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody>\n</table>");
        html
    }

    /// The block [`evcxr_display`](Self::evcxr_display) prints: the HTML table between
    /// `EVCXR_BEGIN_CONTENT text/html` and `EVCXR_END_CONTENT`. Never fails; `Result` for the
    /// same signature as the charts'.
    pub fn display_block(&self) -> Result<String> {
        Ok(render::block("text/html", &self.to_html()))
    }

    /// Shows the table inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        render::print_block(self.display_block());
    }

    /// A column is numeric when it has rows and all its cells are numbers.
    fn is_numeric(&self, column: usize) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|row| row[column].is_number())
    }
}

impl fmt::Display for Table {
    /// Columns padded to their widest cell and two spaces apart; numbers right-aligned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rendered: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(ToString::to_string).collect())
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                rendered
                    .iter()
                    .map(|row| row[column].chars().count())
                    .chain([self.headers[column].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[(String, bool)]| -> fmt::Result {
            let mut text = String::new();
            for (column, (cell, right)) in cells.iter().enumerate() {
                let width = widths[column];
                let padding = " ".repeat(width - cell.chars().count());
                if column > 0 {
                    text.push_str("  ");
                }
                if *right {
                    text.push_str(&padding);
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&padding);
                }
            }
            writeln!(f, "{}", text.trim_end())
        };
        let headers: Vec<(String, bool)> = (0..self.headers.len())
            .map(|c| (self.headers[c].clone(), self.is_numeric(c)))
            .collect();
        line(f, &headers)?;
        let rule: Vec<(String, bool)> = widths.iter().map(|w| ("-".repeat(*w), false)).collect();
        line(f, &rule)?;
        for (row, cells) in self.rows.iter().zip(&rendered) {
            let row: Vec<(String, bool)> = cells
                .iter()
                .zip(row)
                .map(|(text, cell)| (text.clone(), cell.is_number()))
                .collect();
            line(f, &row)?;
        }
        Ok(())
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
