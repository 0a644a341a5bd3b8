import { describe, expect, it } from 'vitest';
import { EMPTY_MASK, hasRepaint, invertMask, KEEP, type MaskDrawing, REPAINT, rasterizeMask } from './mask';

/** The mask as rows of '#' (repaint) and '.' (keep), for readable expectations. */
function picture(drawing: MaskDrawing, width: number, height: number): string[] {
  const mask = rasterizeMask(drawing, width, height);
  expect(mask.data.length).toBe(width * height);
  const rows: string[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(
      Array.from(mask.data.subarray(y * width, (y + 1) * width), (v) => (v >= 128 ? '#' : '.')).join(''),
    );
  }
  return rows;
}

describe('rasterizeMask', () => {
  it('is all keep (0) when nothing is painted', () => {
    const mask = rasterizeMask(EMPTY_MASK, 4, 3);
    expect([mask.width, mask.height]).toEqual([4, 3]);
    expect(Array.from(mask.data)).toEqual(new Array(12).fill(KEEP));
  });

  it('sweeps a round brush along a horizontal stroke at the output size', () => {
    // Radius 1.5 px on an 8 px wide image, from x=2 to x=6 along the middle row of 5.
    const drawing: MaskDrawing = {
      background: 'keep',
      strokes: [
        {
          tool: 'paint',
          radius: 1.5 / 8,
          points: [
            { x: 2 / 8, y: 2.5 / 5 },
            { x: 6 / 8, y: 2.5 / 5 },
          ],
        },
      ],
    };
    // Round caps reach 1.5 px past each end: the middle row runs edge to edge.
    expect(picture(drawing, 8, 5)).toEqual(['........', '.######.', '########', '.######.', '........']);
    expect(rasterizeMask(drawing, 8, 5).data[2 * 8 + 3]).toBe(REPAINT);
  });

  it('draws a click without movement as a dot', () => {
    const drawing: MaskDrawing = {
      background: 'keep',
      strokes: [{ tool: 'paint', radius: 1 / 5, points: [{ x: 0.5, y: 0.5 }] }],
    };
    expect(picture(drawing, 5, 5)).toEqual(['.....', '..#..', '.###.', '..#..', '.....']);
  });

  it('lets a later erase stroke win over an earlier paint', () => {
    const drawing: MaskDrawing = {
      background: 'repaint',
      strokes: [
        {
          tool: 'erase',
          radius: 0.5 / 4,
          points: [
            { x: 0, y: 0.5 / 2 },
            { x: 1, y: 0.5 / 2 },
          ],
        },
      ],
    };
    expect(picture(drawing, 4, 2)).toEqual(['....', '####']);
  });

  it('scales the same drawing to a larger output size', () => {
    const drawing: MaskDrawing = {
      background: 'keep',
      strokes: [{ tool: 'paint', radius: 0.25, points: [{ x: 0.5, y: 0.5 }] }],
    };
    const small = rasterizeMask(drawing, 8, 8).data.filter((v) => v === REPAINT).length;
    const large = rasterizeMask(drawing, 64, 64).data.filter((v) => v === REPAINT).length;
    // A disc of radius w/4: π·(w/4)² pixels; 64× more pixels at 8× the side.
    expect(large).toBeCloseTo(Math.PI * 16 * 16, -2);
    expect(large / small).toBeGreaterThan(50);
  });
});

describe('invertMask', () => {
  it('swaps repaint and keep pixel for pixel', () => {
    const drawing: MaskDrawing = {
      background: 'keep',
      strokes: [
        {
          tool: 'paint',
          radius: 0.3,
          points: [
            { x: 0.2, y: 0.2 },
            { x: 0.8, y: 0.6 },
          ],
        },
        { tool: 'erase', radius: 0.1, points: [{ x: 0.5, y: 0.4 }] },
      ],
    };
    const before = rasterizeMask(drawing, 16, 12).data;
    const after = rasterizeMask(invertMask(drawing), 16, 12).data;
    expect(Array.from(after)).toEqual(Array.from(before, (v) => 255 - v));
  });

  it('knows whether anything will be repainted', () => {
    expect(hasRepaint(EMPTY_MASK)).toBe(false);
    expect(hasRepaint(invertMask(EMPTY_MASK))).toBe(true);
  });
});
