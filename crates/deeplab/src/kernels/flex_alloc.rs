//! Output tensors for the Flex kernels, allocated once.
//!
//! Burn-flex 0.21's `FlexTensor::zeros`/`empty` allocate a byte vector and hand it to
//! `Bytes::from_bytes_vec`, which copies it into a second, 64-byte aligned allocation (the byte
//! vector's static alignment is 1): every output paid a second allocation and a full copy. A
//! typed vector keeps its own allocation (its element type's alignment, all the kernels read).

use burn::tensor::{DType, Element, Shape, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

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

/// A `[N, C, H, W]` tensor whose channel `c`'s planes all hold `value(c)`, written once, plane
/// by plane in parallel: the forward convolutions' output holding the bias, without zeroing it
/// first (`vec![0; n]` is a `calloc`, which clears a reused block before anyone fills it).
pub(crate) fn filled_planes<T>(shape: [usize; 4], value: impl Fn(usize) -> T + Sync) -> FlexTensor
where
    T: Element + Copy + Send + Sync,
{
    let [n, c, h, w] = shape;
    let (plane, total) = (h * w, n * c * h * w);
    let mut data: Vec<T> = Vec::with_capacity(total);
    data.spare_capacity_mut()[..total]
        .par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(i, dst)| {
            let v = value(i % c.max(1));
            for d in dst {
                d.write(v);
            }
        });
    // SAFETY: the loop above wrote every one of the first `total` elements.
    unsafe { data.set_len(total) };
    FlexTensor::from_data(TensorData::new(data, Shape::new(shape)))
}

/// A tensor of `shape` whose elements are the values `chunk_values(i)` yields for its `i`-th
/// chunk of `chunk` elements (the last one possibly shorter), chunks computed in parallel and
/// each element written once — not zeroed first, as [`zeros`] is (see [`filled_planes`]).
///
/// # Panics
/// If an iterator yields fewer values than its chunk holds (extra values are not read).
pub(crate) fn from_chunks<T, I>(
    shape: Shape,
    chunk: usize,
    chunk_values: impl Fn(usize) -> I + Sync,
) -> FlexTensor
where
    T: Element + Copy + Send + Sync,
    I: Iterator<Item = T>,
{
    let total = shape.num_elements();
    let mut data: Vec<T> = Vec::with_capacity(total);
    let written: usize = data.spare_capacity_mut()[..total]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, dst)| {
            let mut count = 0;
            for (d, v) in dst.iter_mut().zip(chunk_values(i)) {
                d.write(v);
                count += 1;
            }
            count
        })
        .sum();
    assert_eq!(written, total, "from_chunks: a chunk's values ran short");
    // SAFETY: each of the first `total` elements was written once (every chunk's count is at
    // most its length, and they add up to `total`).
    unsafe { data.set_len(total) };
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_planes_hold_their_channels_values() {
        let t = filled_planes([2, 3, 2, 2], |c| c as f32 + 0.5);
        assert_eq!(t.layout().shape().dims::<4>(), [2, 3, 2, 2]);
        let got = t.into_data().to_vec::<f32>().expect("f32");
        let expected: Vec<f32> = (0..2)
            .flat_map(|_| (0..3).flat_map(|c| [c as f32 + 0.5; 4]))
            .collect();
        assert_eq!(got, expected);
        let empty = filled_planes([2, 3, 0, 4], |_| 1.0f64);
        assert_eq!(empty.layout().shape().dims::<4>(), [2, 3, 0, 4]);
    }

    #[test]
    fn from_chunks_writes_each_chunks_values() {
        let t = from_chunks(Shape::new([2, 5]), 4, |i| {
            (0..).map(move |k| (10 * i + k) as f32)
        });
        let got = t.into_data().to_vec::<f32>().expect("f32");
        assert_eq!(
            got,
            [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0, 20.0, 21.0]
        );
        let empty = from_chunks(Shape::new([0, 3]), 3, |_| std::iter::repeat(1.0f64));
        assert_eq!(empty.layout().shape().dims::<2>(), [0, 3]);
    }

    #[test]
    #[should_panic(expected = "ran short")]
    fn from_chunks_refuses_a_short_chunk() {
        from_chunks(Shape::new([2, 4]), 4, |i| (0..4 - i).map(|k| k as f32));
    }

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
