//! Lesson 08 (`08-lora`): to be written.

pub use models::lora::*;

use std::path::Path;

use crate::LessonResult;
use crate::exercise::Exercise;

pub const EXERCISES: &[Exercise] = &[];

/// The chapter's figures, drawn into `out` when the book is built.
pub fn figures(_out: &Path) -> LessonResult<()> {
    Ok(())
}
