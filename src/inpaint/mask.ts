/**
 * The inpainting mask as the person paints it, and its rasterisation into the MaskImage the
 * worker takes. Strokes are kept in coordinates relative to the image (0…1), so the same drawing
 * rasterises at whatever output size is chosen when Generate is pressed.
 */
import type { MaskImage } from '../../workers/api';

/** White in the mask: the pipeline repaints these pixels (diffusers' convention, ≥ 128). */
export const REPAINT = 255;
/** Black: the pixels are kept from the input image. */
export const KEEP = 0;

export interface MaskPoint {
  /** 0 … 1 across the image's width. */
  readonly x: number;
  /** 0 … 1 down the image's height. */
  readonly y: number;
}

export interface MaskStroke {
  /** 'paint' marks pixels for repainting, 'erase' marks them to keep. */
  readonly tool: 'paint' | 'erase';
  /** Brush radius as a fraction of the image width. */
  readonly radius: number;
  readonly points: readonly MaskPoint[];
}

export interface MaskDrawing {
  /** What unpainted pixels are: 'keep' for a fresh mask, 'repaint' after "repaint everything". */
  readonly background: 'keep' | 'repaint';
  readonly strokes: readonly MaskStroke[];
}

export const EMPTY_MASK: MaskDrawing = { background: 'keep', strokes: [] };

/** Swaps repaint and keep everywhere: each later stroke still sets one value, so flipping works. */
export function invertMask(drawing: MaskDrawing): MaskDrawing {
  return {
    background: drawing.background === 'keep' ? 'repaint' : 'keep',
    strokes: drawing.strokes.map((s) => ({ ...s, tool: s.tool === 'paint' ? 'erase' : 'paint' })),
  };
}

export function hasRepaint(drawing: MaskDrawing): boolean {
  return drawing.background === 'repaint' || drawing.strokes.some((s) => s.tool === 'paint');
}

/**
 * Rasterises the drawing at width × height pixels. A pixel belongs to a stroke when its centre
 * lies within the brush radius of the stroke's polyline (a round brush swept along the path);
 * strokes apply in order, so a later erase wins over an earlier paint.
 */
export function rasterizeMask(drawing: MaskDrawing, width: number, height: number): MaskImage {
  const data = new Uint8Array(width * height).fill(drawing.background === 'repaint' ? REPAINT : KEEP);
  for (const stroke of drawing.strokes) {
    const value = stroke.tool === 'paint' ? REPAINT : KEEP;
    const radius = stroke.radius * width;
    const points = stroke.points.map((p) => ({ x: p.x * width, y: p.y * height }));
    const first = points[0];
    if (!first) continue;
    // A click without movement is a dot: a segment from the point to itself.
    const segments = points.length === 1 ? [[first, first] as const] : pairs(points);
    for (const [a, b] of segments) sweepSegment(data, width, height, a, b, radius, value);
  }
  return { width, height, data };
}

function pairs<T>(items: readonly T[]): (readonly [T, T])[] {
  const out: (readonly [T, T])[] = [];
  for (let i = 1; i < items.length; i++) out.push([items[i - 1] as T, items[i] as T]);
  return out;
}

function sweepSegment(
  data: Uint8Array,
  width: number,
  height: number,
  a: { x: number; y: number },
  b: { x: number; y: number },
  radius: number,
  value: number,
): void {
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - radius));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(a.x, b.x) + radius));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - radius));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(a.y, b.y) + radius));
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const lengthSquared = dx * dx + dy * dy;
  const radiusSquared = radius * radius;
  for (let y = y0; y <= y1; y++) {
    const cy = y + 0.5;
    for (let x = x0; x <= x1; x++) {
      const cx = x + 0.5;
      // Closest point of the segment to the pixel centre.
      const t =
        lengthSquared === 0
          ? 0
          : Math.max(0, Math.min(1, ((cx - a.x) * dx + (cy - a.y) * dy) / lengthSquared));
      const ex = cx - (a.x + t * dx);
      const ey = cy - (a.y + t * dy);
      if (ex * ex + ey * ey <= radiusSquared) data[y * width + x] = value;
    }
  }
}
