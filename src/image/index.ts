// Browser-safe image API (no Node modules); Node file I/O is in node-io.ts.
export { checkImage, createImage, fromRgba, toRgba, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, type RgbImage } from './image.ts';
export { decodeImage, encodeImage, formatFromName, readImageHeader, sniffFormat, type ImageFormat, type ImageHeader } from './codec.ts';
export { fitLongestSide, resize } from './resize.ts';
export {
  colorMoments, matchColorHistogram, rgbToYiq, transferLuminance, yiqToRgb, RGB_TO_YIQ, YIQ_TO_RGB, type ColorMatchMethod,
} from './color.ts';
