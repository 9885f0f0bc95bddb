//! File formats: 8/16-bit, grey/RGB/RGBA, tif (LZW)/gif/png/jpg/bmp; masks binarised at 128.

use std::path::Path;

use drive_data::decode::{read_mask, read_rgb};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};

fn gradient_rgb() -> image::RgbImage {
    ImageBuffer::from_fn(16, 12, |x, y| Rgb([(x * 16) as u8, (y * 20) as u8, 77]))
}

fn save(img: &DynamicImage, path: &Path, format: ImageFormat) {
    img.save_with_format(path, format).unwrap();
}

#[test]
fn lossless_formats_round_trip_to_rgb8() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = gradient_rgb();
    for (name, format) in [
        ("a.png", ImageFormat::Png),
        ("a.bmp", ImageFormat::Bmp),
        ("a.tif", ImageFormat::Tiff),
    ] {
        let path = dir.path().join(name);
        save(&DynamicImage::ImageRgb8(rgb.clone()), &path, format);
        assert_eq!(read_rgb(&path).unwrap(), rgb, "{name}");
    }
    let lzw = dir.path().join("lzw.tif");
    drive_data::write::write_tiff_lzw(&lzw, &rgb).unwrap();
    assert_eq!(read_rgb(&lzw).unwrap(), rgb);
}

#[test]
fn jpeg_decodes_approximately() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = gradient_rgb();
    let path = dir.path().join("a.jpeg");
    save(
        &DynamicImage::ImageRgb8(rgb.clone()),
        &path,
        ImageFormat::Jpeg,
    );
    let back = read_rgb(&path).unwrap();
    let err: f64 = back
        .iter()
        .zip(rgb.iter())
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / rgb.len() as f64;
    assert!(err < 12.0, "mean abs error {err}");
}

#[test]
fn sixteen_bit_grey_and_rgba_become_rgb8() {
    let dir = tempfile::tempdir().unwrap();
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(4, 3, |x, _| Rgb([(x as u16) * 20000, 65535, 0]));
    let path = dir.path().join("deep.png");
    save(&DynamicImage::ImageRgb16(rgb16), &path, ImageFormat::Png);
    let back = read_rgb(&path).unwrap();
    assert_eq!(back.get_pixel(3, 0).0, [233, 255, 0]); // 60000/65535·255 = 233.47
    let path = dir.path().join("deep.tif");
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(4, 3, |x, _| Luma([(x as u16) * 20000]));
    save(&DynamicImage::ImageLuma16(grey16), &path, ImageFormat::Tiff);
    assert_eq!(read_rgb(&path).unwrap().get_pixel(1, 0).0, [78, 78, 78]);

    let rgba: ImageBuffer<Rgba<u8>, Vec<u8>> =
        ImageBuffer::from_fn(4, 3, |_, _| Rgba([10, 20, 30, 0]));
    let path = dir.path().join("alpha.png");
    save(&DynamicImage::ImageRgba8(rgba), &path, ImageFormat::Png);
    assert_eq!(read_rgb(&path).unwrap().get_pixel(0, 0).0, [10, 20, 30]);

    let grey: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(4, 3, |x, _| Luma([x as u8 * 50]));
    let path = dir.path().join("grey.png");
    save(&DynamicImage::ImageLuma8(grey), &path, ImageFormat::Png);
    assert_eq!(read_rgb(&path).unwrap().get_pixel(2, 0).0, [100, 100, 100]);
}

#[test]
fn masks_are_binarised_at_128_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // Not strictly 0/255, as in some DRIVE gifs.
    let values = [0u8, 3, 127, 128, 200, 255];
    let grey: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(6, 1, |x, _| Luma([values[x as usize]]));
    let expected = [0u8, 0, 0, 1, 1, 1];
    for (name, format) in [
        ("m.gif", ImageFormat::Gif),
        ("m.png", ImageFormat::Png),
        ("m.tif", ImageFormat::Tiff),
    ] {
        let path = dir.path().join(name);
        let img = if format == ImageFormat::Gif {
            DynamicImage::ImageRgba8(DynamicImage::ImageLuma8(grey.clone()).to_rgba8())
        } else {
            DynamicImage::ImageLuma8(grey.clone())
        };
        save(&img, &path, format);
        assert_eq!(read_mask(&path).unwrap().as_raw(), &expected, "{name}");
    }
    let mask16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(2, 1, |x, _| Luma([x as u16 * 65535]));
    let path = dir.path().join("m16.png");
    save(&DynamicImage::ImageLuma16(mask16), &path, ImageFormat::Png);
    assert_eq!(read_mask(&path).unwrap().as_raw(), &[0, 1]);
}

#[test]
fn misnamed_files_decode_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = gradient_rgb();
    let path = dir.path().join("actually_png.tif");
    save(
        &DynamicImage::ImageRgb8(rgb.clone()),
        &path,
        ImageFormat::Png,
    );
    assert_eq!(read_rgb(&path).unwrap(), rgb);
}
