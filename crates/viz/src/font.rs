//! The font compiled into the crate, registered with plotters at first use.
//!
//! plotters' `ab_glyph` feature measures and draws text only with fonts registered by name; its `ttf`
//! feature would look fonts up on the system instead, and a bare CI machine or container has none.
//! Bundling DejaVu Sans (a subset, 113 KB; see `fonts/README.md`) makes PNG text identical
//! everywhere. SVG output names the family only and leaves drawing the glyphs to the viewer.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::{Error, Result};

/// The family every chart asks for; registering the bundled font under plotters' default name also
/// covers the labels plotters draws on its own (axis ticks, legends).
pub(crate) const FAMILY: &str = "sans-serif";

const DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Registers the bundled font once per process; every render calls this first.
pub(crate) fn register() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if registered {
        Ok(())
    } else {
        Err(Error::Plot {
            what: "text".into(),
            message: "the bundled font fonts/DejaVuSans-subset.ttf does not parse".into(),
        })
    }
}
