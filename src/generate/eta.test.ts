import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../workers/errors';
import { adviceForError } from './error-advice';
import { formatDuration, StepTimer } from './eta';

describe('StepTimer', () => {
  it('has no estimate before two steps', () => {
    const timer = new StepTimer();
    timer.record('denoise', 1, 10_000);
    expect(timer.remainingMs(1, 50)).toBeNull();
  });

  it('ignores the slow first step (shader compilation) and multiplies the step time by steps left', () => {
    const timer = new StepTimer();
    // Step 1 took 9 s (compilation); steps 2–4 take 200 ms each.
    timer.record('denoise', 1, 9_000);
    timer.record('denoise', 2, 9_200);
    timer.record('denoise', 3, 9_400);
    timer.record('denoise', 4, 9_600);
    expect(timer.msPerStep()).toBeCloseTo(200);
    expect(timer.remainingMs(4, 50)).toBeCloseTo(46 * 200);
  });

  it('spreads a gap over skipped step events', () => {
    const timer = new StepTimer();
    timer.record('denoise', 2, 0);
    timer.record('denoise', 5, 900);
    expect(timer.msPerStep()).toBeCloseTo(300);
  });

  it('averages only the recent steps so it follows a slowdown', () => {
    const timer = new StepTimer();
    let now = 0;
    for (let step = 1; step <= 20; step++) {
      now += step <= 10 ? 100 : 500;
      timer.record('denoise', step, now);
    }
    expect(timer.msPerStep()).toBeCloseTo(500);
  });

  it('starts over in a new stage, and keeps its speed when the next image restarts the counter', () => {
    const timer = new StepTimer();
    timer.record('prior', 1, 0);
    timer.record('prior', 2, 50);
    timer.record('denoise', 1, 1000);
    expect(timer.msPerStep()).toBeNull();
    timer.record('denoise', 2, 1400);
    timer.record('denoise', 1, 3000); // second image of the batch
    expect(timer.msPerStep()).toBeCloseTo(400);
    timer.record('denoise', 2, 3600);
    expect(timer.msPerStep()).toBeCloseTo(500);
  });
});

describe('formatDuration', () => {
  it.each([
    [400, 'less than a second'],
    [8_400, 'about 8 s'],
    [80_000, 'about 1 min 20 s'],
    [120_000, 'about 2 min'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('adviceForError', () => {
  it.each([...ERROR_CODES])('has a title and advice for the worker code %s', (code) => {
    const advice = adviceForError(code);
    expect(advice.title.length).toBeGreaterThan(3);
    expect(advice.advice.length).toBeGreaterThan(3);
  });

  it('tells a person with a full disk what to delete', () => {
    expect(adviceForError('STORAGE_FULL').advice).toContain('delete some images or models');
  });
});
