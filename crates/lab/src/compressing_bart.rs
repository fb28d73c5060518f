//! Lesson 09 (`09-compressing-bart`): to be written.


use std::path::Path;

use crate::LessonResult;
use crate::exercise::Exercise;

pub const EXERCISES: &[Exercise] = &[];

/// The chapter's figures, drawn into `out` when the book is built.
pub fn figures(_out: &Path) -> LessonResult<()> {
    Ok(())
}
