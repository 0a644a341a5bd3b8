import type { RgbaImage } from '../../workers/api';

/** Paints RGBA pixels onto a canvas, resizing the canvas to the image. */
export function drawRgba(canvas: HTMLCanvasElement, image: RgbaImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext('2d');
  if (!context) return;
  const pixels = new Uint8ClampedArray(image.width * image.height * 4);
  pixels.set(image.data);
  context.putImageData(new ImageData(pixels, image.width, image.height), 0, 0);
}
