//! F32 weights in the AMX buffer type: packed as BF16 at upload, from f32 bytes or from
//! the caller's dequantization of a weight in any ggml type (see the module docs of
//! [`super`]).

use std::fmt;
use std::ops::Range;

use amx_core::formats::half::bf16_to_f32;
use amx_core::pack::{self, BodySum, HEADER_BYTES, PackedRef};

use crate::error::BufferError;
use crate::tensor::DType;

use super::{AmxBufferType, Buffer, BufferType, layout_of, verify_packed};

impl AmxBufferType {
    /// Uploads the F32 weight `buf` (`[K, N]` or a stack `[K, N, E]`, allocated by this
    /// type, which must be [`AmxBufferType::with_f32_as_bf16`]) from the caller's f32
    /// values, packed as BF16: `rows(range, out)` writes the f32 values of stacked rows
    /// `range` (rows of all matrices counted in order, matrix after matrix, `K` values
    /// each) into `out` (`range.len() * K` values). It is called once for each 16-row
    /// panel, in order, at most 16 rows at a time, so a weight in a ggml type amx-core
    /// cannot pack is dequantized a panel at a time, never as a whole f32 copy:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use amx_runtime::buffer::{Buffer, Buft, amx::AmxBufferType};
    /// # use amx_runtime::tensor::{DType, TensorDesc};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A weight of 2 rows of 64 values in a type with no amx-rs format (here: 1-byte
    /// // values standing for ggml's), dequantized by the engine's own function.
    /// let (k, n, raw) = (64, 2, vec![3u8; 128]);
    /// let to_float = |bytes: &[u8], out: &mut [f32]| {
    ///     for (o, b) in out.iter_mut().zip(bytes) {
    ///         *o = f32::from(*b) * 0.5;
    ///     }
    ///     Ok::<(), String>(())
    /// };
    /// let amx = Arc::new(AmxBufferType::new().with_f32_as_bf16());
    /// let buft: Buft = amx.clone();
    /// let desc = TensorDesc::new("blk.0.ffn_up.weight", DType::F32, &[k, n]).unwrap();
    /// let mut buf = Buffer::alloc(&buft, desc)?;
    /// amx.set_tensor_from_rows(&mut buf, |rows, out| {
    ///     to_float(&raw[rows.start * k..rows.end * k], out)
    /// })?;
    /// assert_eq!(buf.download()?[..4], 1.5f32.to_le_bytes());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The packed weight is checked end to end as every upload is.
    ///
    /// Errors: [`BufferError::Unsupported`] when `buf` is not an F32 tensor,
    /// [`BufferError::NotOwner`], [`BufferError::BadShape`], [`BufferError::Dequantize`]
    /// with the rows and the message when `rows` fails (the buffer is then not a valid
    /// weight until a later upload succeeds), [`BufferError::Pack`].
    pub fn set_tensor_from_rows<E: fmt::Display>(
        &self,
        buf: &mut Buffer,
        mut rows: impl FnMut(Range<usize>, &mut [f32]) -> Result<(), E>,
    ) -> Result<(), BufferError> {
        let desc = buf.desc().clone();
        if desc.dtype != DType::F32 {
            return Err(BufferError::Unsupported {
                tensor: desc.name.clone(),
                buft: self.name().into(),
                dtype: desc.dtype,
            });
        }
        let layout = layout_of(&desc).ok_or(BufferError::BadShape { tensor: desc.name.clone() })?;
        let pack_err = |error| BufferError::Pack { tensor: desc.name.clone(), error };
        let k = layout.k();
        let dst = buf.owned_bytes_mut(self)?;
        if dst.len() < layout.total_bytes() {
            return Err(pack_err(pack::PackError::DestinationTooSmall {
                needed: layout.total_bytes(),
                actual: dst.len(),
            }));
        }
        let (head, body) = dst.split_at_mut(HEADER_BYTES);
        // One panel's rows at a time: at most 16 * K values.
        let mut values = Vec::new();
        let mut sum = BodySum::EMPTY;
        for (p, out) in body.chunks_exact_mut(layout.panel_bytes()).enumerate() {
            let range = pack::source_rows(&layout, p..p + 1);
            values.clear();
            values.resize(range.len() * k, 0f32);
            rows(range.clone(), &mut values).map_err(|e| BufferError::Dequantize {
                tensor: desc.name.clone(),
                rows: range,
                message: e.to_string(),
            })?;
            let part = pack::pack_f32_as_bf16_panels(&layout, &values, p..p + 1, out);
            sum = sum.combine(part.map_err(pack_err)?);
        }
        pack::write_header(&layout, &sum, head).map_err(pack_err)?;
        // The weights are verified where they will be read from, once, at upload.
        verify_packed(&desc, &layout, buf.owned_bytes(self)?)
    }

    /// [`BufferType::set_tensor`] of an F32 weight: `data` is its f32 bytes.
    pub(super) fn set_f32(&self, buf: &mut Buffer, data: &[u8]) -> Result<(), BufferError> {
        let desc = buf.desc().clone();
        let expected = desc.nbytes().ok_or(BufferError::BadShape { tensor: desc.name.clone() })?;
        if data.len() != expected {
            return Err(BufferError::Length { tensor: desc.name, expected, actual: data.len() });
        }
        let k = desc.ne[0];
        self.set_tensor_from_rows(buf, |rows, out: &mut [f32]| {
            let bytes = &data[4 * k * rows.start..4 * k * rows.end];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok::<(), std::convert::Infallible>(())
        })
    }

    /// [`BufferType::get_tensor`] of an F32 weight: the f32 bytes of the packed BF16
    /// values (the uploaded values rounded to BF16).
    pub(super) fn get_f32(&self, buf: &Buffer, out: &mut [u8]) -> Result<(), BufferError> {
        let desc = buf.desc();
        let layout = layout_of(desc).ok_or(BufferError::BadShape { tensor: desc.name.clone() })?;
        let pack_err = |error| BufferError::Pack { tensor: desc.name.clone(), error };
        let expected = 2 * layout.source_bytes();
        if out.len() != expected {
            return Err(BufferError::Length {
                tensor: desc.name.clone(),
                expected,
                actual: out.len(),
            });
        }
        let packed = PackedRef::parse_expecting(
            buf.owned_bytes(self)?,
            layout.format(),
            layout.n(),
            layout.k(),
            layout.matrices(),
        )
        .map_err(pack_err)?;
        let mut bf16 = vec![0u8; layout.source_bytes()];
        pack::unpack(&packed, &mut bf16).map_err(pack_err)?;
        for (o, b) in out.chunks_exact_mut(4).zip(bf16.chunks_exact(2)) {
            o.copy_from_slice(&bf16_to_f32(u16::from_le_bytes([b[0], b[1]])).to_le_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
