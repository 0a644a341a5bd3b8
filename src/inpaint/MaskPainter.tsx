import { useEffect, useId, useRef, useState } from 'react';
import { coverCrop } from '../image-input/image-dimensions';
import type { SourceImage } from '../image-input/load-image';
import { EMPTY_MASK, invertMask, type MaskDrawing, type MaskPoint, type MaskStroke } from './mask';

interface Props {
  readonly source: SourceImage;
  /** Output size, pixels: the canvases work at this size so strokes land where they will apply. */
  readonly width: number;
  readonly height: number;
  readonly mask: MaskDrawing;
  readonly onMask: (mask: MaskDrawing) => void;
}

const MASK_COLOUR = '#ff2d95';

/** Draws the mask for the eye; the MaskImage sent to the worker comes from rasterizeMask. */
function paintOverlay(
  context: CanvasRenderingContext2D,
  drawing: MaskDrawing,
  width: number,
  height: number,
) {
  context.globalCompositeOperation = 'source-over';
  context.clearRect(0, 0, width, height);
  context.fillStyle = MASK_COLOUR;
  context.strokeStyle = MASK_COLOUR;
  if (drawing.background === 'repaint') context.fillRect(0, 0, width, height);
  for (const stroke of drawing.strokes) paintStroke(context, stroke, width, height);
  context.globalCompositeOperation = 'source-over';
}

function paintStroke(context: CanvasRenderingContext2D, stroke: MaskStroke, width: number, height: number) {
  context.globalCompositeOperation = stroke.tool === 'paint' ? 'source-over' : 'destination-out';
  const radius = stroke.radius * width;
  const [first, ...rest] = stroke.points;
  if (!first) return;
  context.beginPath();
  if (rest.length === 0) {
    context.arc(first.x * width, first.y * height, radius, 0, Math.PI * 2);
    context.fill();
    return;
  }
  context.lineWidth = radius * 2;
  context.lineCap = 'round';
  context.lineJoin = 'round';
  context.moveTo(first.x * width, first.y * height);
  for (const point of rest) context.lineTo(point.x * width, point.y * height);
  context.stroke();
}

/** A brush that scales with the picture: 1/20 of its short side (a 64 px picture gets a 6 px brush). */
export function defaultBrushRadius(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 20));
}

/** Paint what to repaint over the picture, with a round brush and an eraser. */
export function MaskPainter({ source, width, height, mask, onMask }: Props) {
  const id = useId();
  const base = useRef<HTMLCanvasElement>(null);
  const overlay = useRef<HTMLCanvasElement>(null);
  const [tool, setTool] = useState<MaskStroke['tool']>('paint');
  /** Brush radius, pixels of the output image: a twentieth of the short side to start with. */
  const [radiusPx, setRadiusPx] = useState(() => defaultBrushRadius(width, height));
  const maxRadius = Math.max(4, Math.round(Math.min(width, height) / 2));
  useEffect(() => {
    setRadiusPx(defaultBrushRadius(width, height));
  }, [width, height]);
  const drawing = useRef<MaskStroke | null>(null);

  useEffect(() => {
    const context = base.current?.getContext('2d');
    if (!context) return;
    const crop = coverCrop(source.bitmap.width, source.bitmap.height, width, height);
    context.drawImage(source.bitmap, crop.x, crop.y, crop.width, crop.height, 0, 0, width, height);
  }, [source, width, height]);

  useEffect(() => {
    const context = overlay.current?.getContext('2d');
    if (context) paintOverlay(context, mask, width, height);
  }, [mask, width, height]);

  const pointAt = (event: React.PointerEvent<HTMLCanvasElement>): MaskPoint => {
    const rect = event.currentTarget.getBoundingClientRect();
    return {
      x: Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)),
      y: Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height)),
    };
  };

  const redrawWithCurrent = () => {
    const context = overlay.current?.getContext('2d');
    if (!context) return;
    paintOverlay(
      context,
      drawing.current ? { ...mask, strokes: [...mask.strokes, drawing.current] } : mask,
      width,
      height,
    );
  };

  const painted = mask.strokes.length > 0 || mask.background === 'repaint';
  return (
    <div className="mask-painter" data-testid="mask-painter">
      <div className="mask-stage" style={{ aspectRatio: `${width} / ${height}` }}>
        <canvas ref={base} width={width} height={height} />
        <canvas
          ref={overlay}
          width={width}
          height={height}
          className="mask-overlay"
          role="img"
          aria-label={`Mask over the picture: ${painted ? 'painted areas (pink) will be repainted' : 'nothing painted yet'}`}
          data-testid="mask-canvas"
          onPointerDown={(event) => {
            event.currentTarget.setPointerCapture(event.pointerId);
            drawing.current = { tool, radius: radiusPx / width, points: [pointAt(event)] };
            redrawWithCurrent();
          }}
          onPointerMove={(event) => {
            const stroke = drawing.current;
            if (!stroke) return;
            drawing.current = { ...stroke, points: [...stroke.points, pointAt(event)] };
            redrawWithCurrent();
          }}
          onPointerUp={() => {
            const stroke = drawing.current;
            drawing.current = null;
            if (stroke) onMask({ ...mask, strokes: [...mask.strokes, stroke] });
          }}
          onPointerCancel={() => {
            drawing.current = null;
            redrawWithCurrent();
          }}
        />
      </div>
      <fieldset className="mask-tools">
        <legend className="visually-hidden">Mask tools</legend>
        <fieldset className="inline">
          <legend>Tool</legend>
          <label>
            <input
              type="radio"
              name={`${id}-tool`}
              checked={tool === 'paint'}
              onChange={() => setTool('paint')}
            />
            Brush (repaint)
          </label>
          <label>
            <input
              type="radio"
              name={`${id}-tool`}
              checked={tool === 'erase'}
              onChange={() => setTool('erase')}
            />
            Eraser (keep)
          </label>
        </fieldset>
        <label>
          Brush size: {radiusPx * 2} px
          <input
            type="range"
            min={1}
            max={maxRadius}
            step={1}
            value={radiusPx}
            onChange={(e) => setRadiusPx(Number(e.target.value))}
          />
        </label>
        <div className="button-row">
          <button
            type="button"
            className="secondary"
            disabled={mask.strokes.length === 0}
            onClick={() => onMask({ ...mask, strokes: mask.strokes.slice(0, -1) })}
          >
            Undo stroke
          </button>
          <button type="button" className="secondary" onClick={() => onMask(invertMask(mask))}>
            Invert mask
          </button>
          <button type="button" className="secondary" disabled={!painted} onClick={() => onMask(EMPTY_MASK)}>
            Clear mask
          </button>
        </div>
        <p className="hint">
          Paint (pink) where the picture should change; everything else is kept. Without a pointer, “Invert
          mask” marks the whole picture for repainting.
        </p>
      </fieldset>
    </div>
  );
}
