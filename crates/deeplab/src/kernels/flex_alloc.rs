//! Output tensors for the Flex kernels, allocated once.
//!
//! Burn-flex 0.21's `FlexTensor::zeros`/`empty` allocate a byte vector and hand it to
//! `Bytes::from_bytes_vec`, which copies it into a second, 64-byte aligned allocation (the byte
//! vector's static alignment is 1): every output paid a second allocation and a full copy. A
//! typed vector keeps its own allocation (its element type's alignment, all the kernels read).

use burn::tensor::{DType, Shape, TensorData};
use burn_flex::FlexTensor;

/// A zero tensor of `shape` and `dtype`, in a single allocation for f32 and f64 (other types as
/// Flex allocates them).
pub(crate) fn zeros(shape: Shape, dtype: DType) -> FlexTensor {
    let n = shape.num_elements();
    match dtype {
        DType::F32 => FlexTensor::from_data(TensorData::new(vec![0f32; n], shape)),
        DType::F64 => FlexTensor::from_data(TensorData::new(vec![0f64; n], shape)),
        _ => FlexTensor::zeros(shape, dtype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_have_the_shape_type_and_values_asked_for() {
        for dtype in [DType::F32, DType::F64, DType::F16] {
            let t = zeros(Shape::new([2, 3, 4]), dtype);
            assert_eq!(t.dtype(), dtype);
            assert_eq!(t.layout().shape().dims::<3>(), [2, 3, 4]);
            let data = t.into_data().convert::<f64>();
            assert_eq!(data.to_vec::<f64>().expect("f64"), vec![0.0; 24]);
        }
    }
}
