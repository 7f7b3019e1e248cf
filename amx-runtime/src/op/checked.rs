//! An op whose checks that depend on its descriptions alone have passed: what the
//! executors' per-step paths take, so that a prepared step checks each op once, not
//! once per step.

use crate::error::ExecError;

use super::OpDesc;

/// `op` after [`CheckedOp::new`]: it follows its rules ([`OpDesc::check`], `dst`
/// included) and every non-host buffer type it names accepts it
/// ([`crate::buffer::BufferType::supports_op`]). Both answers depend on the op's
/// descriptions and buffer types only, never on buffer contents, so they hold for as
/// long as the op is not changed (the borrow sees to that).
///
/// The `*_checked` methods of [`crate::backend::Backend`] and
/// [`crate::buffer::BufferType`] take one instead of re-asking these questions. They
/// still check what can differ from call to call: that the buffers are the ones the op
/// describes (description and buffer type, compared by identity), buffer lengths and
/// owners, packed headers, ids and positions read from the sources.
#[derive(Clone, Copy, Debug)]
pub struct CheckedOp<'a> {
    op: &'a OpDesc,
}

impl<'a> CheckedOp<'a> {
    /// Checks `op` as described on [`CheckedOp`].
    ///
    /// Errors: [`ExecError::Op`] from [`OpDesc::check`]; [`ExecError::Unsupported`] naming
    /// the first non-host buffer type that refuses the op.
    pub fn new(op: &'a OpDesc) -> Result<CheckedOp<'a>, ExecError> {
        op.check().map_err(ExecError::Op)?;
        if let Some(s) = op.srcs.iter().find(|s| !s.buft.is_host() && !s.buft.supports_op(op)) {
            return Err(ExecError::Unsupported {
                op: op.name().clone(),
                kind: op.op.name(),
                by: s.buft.name().into(),
            });
        }
        Ok(CheckedOp { op })
    }

    /// `op`, which the caller has checked with [`CheckedOp::new`] and not changed since
    /// (a prepared step keeps its ops and re-checks one when a buffer type changes).
    pub(crate) fn trusted(op: &'a OpDesc) -> CheckedOp<'a> {
        CheckedOp { op }
    }

    /// The op.
    pub fn op(&self) -> &'a OpDesc {
        self.op
    }
}
