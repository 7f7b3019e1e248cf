//! Plain host memory: the bytes are the tensor's values in ggml layout.

use std::sync::{Arc, OnceLock};

use crate::error::BufferError;
use crate::op::OpDesc;
use crate::tensor::TensorDesc;

use super::{Buffer, BufferType, Buft, BuftId};

/// Host memory (ggml's CPU buffer type): `is_host = true`, plain bytes, every op.
#[derive(Debug)]
pub struct HostBufferType {
    id: BuftId,
}

/// The process-wide host buffer type (graph inputs, CPU results and host weights all
/// live in it).
pub fn host() -> Buft {
    static HOST: OnceLock<Buft> = OnceLock::new();
    HOST.get_or_init(|| Arc::new(HostBufferType { id: BuftId::fresh() })).clone()
}

pub(crate) fn plain_len(tensor: &TensorDesc) -> Result<usize, BufferError> {
    tensor.nbytes().ok_or_else(|| BufferError::BadShape { tensor: tensor.name.clone() })
}

/// Checks that `actual` bytes are exactly the tensor's plain (ggml) size.
pub(crate) fn check_len(tensor: &TensorDesc, actual: usize) -> Result<(), BufferError> {
    let expected = plain_len(tensor)?;
    if expected != actual {
        return Err(BufferError::Length { tensor: tensor.name.clone(), expected, actual });
    }
    Ok(())
}

impl BufferType for HostBufferType {
    fn id(&self) -> BuftId {
        self.id
    }

    fn name(&self) -> &str {
        "host"
    }

    fn is_host(&self) -> bool {
        true
    }

    fn alignment(&self) -> usize {
        64
    }

    fn alloc_size(&self, tensor: &TensorDesc) -> Result<usize, BufferError> {
        plain_len(tensor)
    }

    /// Plain values can be read by any kernel: every op that follows its rules
    /// ([`OpDesc::check`], `dst` included) is accepted; whether it runs is the backend's
    /// call.
    fn supports_op(&self, op: &OpDesc) -> bool {
        op.check().is_ok()
    }

    fn set_tensor(&self, buf: &mut Buffer, data: &[u8]) -> Result<(), BufferError> {
        check_len(buf.desc(), data.len())?;
        buf.owned_bytes_mut(self)?.copy_from_slice(data);
        Ok(())
    }

    fn get_tensor(&self, buf: &Buffer, out: &mut [u8]) -> Result<(), BufferError> {
        check_len(buf.desc(), out.len())?;
        out.copy_from_slice(buf.owned_bytes(self)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    #[test]
    fn one_host_type_per_process_and_lengths_checked() {
        assert_eq!(host().id(), host().id());
        assert!(host().is_host());
        let h = host();
        let desc = TensorDesc::new("t", DType::I32, &[2, 2]).unwrap();
        assert_eq!(h.alloc_size(&desc), Ok(16));
        let e = Buffer::upload(&h, desc, &[0; 15]).unwrap_err();
        assert_eq!(e, BufferError::Length { tensor: "t".into(), expected: 16, actual: 15 });
    }
}
