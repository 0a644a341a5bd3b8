import { describe, expect, it } from 'vitest';
import { toWireError } from './errors';
import { JobQueue } from './job-queue';

/** A runner whose jobs finish only when the test says so, or when aborted. */
function controllableRunner() {
  const started: string[] = [];
  const finishers = new Map<string, (value: string) => void>();
  const runner = (request: string, signal: AbortSignal, jobId: string) =>
    new Promise<string>((resolve, reject) => {
      started.push(jobId);
      finishers.set(jobId, (value) => resolve(`${request}:${value}`));
      signal.addEventListener('abort', () => reject(new Error('aborted inside the runner')));
    });
  return { runner, started, finish: (id: string, value = 'ok') => finishers.get(id)?.(value) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('JobQueue', () => {
  it('runs one job at a time in submission order', async () => {
    const { runner, started, finish } = controllableRunner();
    const queue = new JobQueue(runner);
    const a = queue.submit('a', 'first');
    const b = queue.submit('b', 'second');
    await settle();
    expect(started).toEqual(['a']);
    finish('a');
    await expect(a).resolves.toBe('first:ok');
    await settle();
    expect(started).toEqual(['a', 'b']);
    finish('b');
    await expect(b).resolves.toBe('second:ok');
    expect(queue.size).toBe(0);
  });

  it('cancels a waiting job without ever starting it', async () => {
    const { runner, started, finish } = controllableRunner();
    const queue = new JobQueue(runner);
    const a = queue.submit('a', 'x');
    const b = queue.submit('b', 'y');
    expect(queue.cancel('b')).toBe(true);
    await expect(b).rejects.toSatisfy((e) => toWireError(e).code === 'CANCELLED');
    finish('a');
    await a;
    await settle();
    expect(started).toEqual(['a']);
  });

  it('aborts the running job, reports CANCELLED and moves on to the next', async () => {
    const { runner, started, finish } = controllableRunner();
    const queue = new JobQueue(runner);
    const a = queue.submit('a', 'x');
    const b = queue.submit('b', 'y');
    await settle();
    expect(queue.cancel('a')).toBe(true);
    await expect(a).rejects.toSatisfy((e) => toWireError(e).code === 'CANCELLED');
    await settle();
    expect(started).toEqual(['a', 'b']);
    finish('b');
    await expect(b).resolves.toBe('y:ok');
  });

  it('keeps a failure as it is and still runs the next job', async () => {
    let calls = 0;
    const queue = new JobQueue(async (request: string) => {
      calls++;
      if (request === 'bad') throw new Error('the GPU said no');
      return request;
    });
    const bad = queue.submit('1', 'bad');
    const good = queue.submit('2', 'good');
    await expect(bad).rejects.toThrow('the GPU said no');
    await expect(good).resolves.toBe('good');
    expect(calls).toBe(2);
  });

  it('tells waiting jobs their place as the queue moves', async () => {
    const { runner, finish } = controllableRunner();
    const seen: Record<string, number>[] = [];
    const queue = new JobQueue(runner, (positions) => seen.push(Object.fromEntries(positions)));
    const jobs = ['a', 'b', 'c'].map((id) => queue.submit(id, id));
    await settle();
    expect(seen.at(-1)).toEqual({ b: 0, c: 1 });
    finish('a');
    await jobs[0];
    await settle();
    expect(seen.at(-1)).toEqual({ c: 0 });
    expect(queue.cancel('c')).toBe(true);
    await expect(jobs[2]).rejects.toBeDefined();
    finish('b');
    await jobs[1];
  });

  it('rejects a duplicate job id and ignores cancelling an unknown one', async () => {
    const { runner, finish } = controllableRunner();
    const queue = new JobQueue(runner);
    const a = queue.submit('a', 'x');
    await expect(queue.submit('a', 'y')).rejects.toSatisfy((e) => toWireError(e).code === 'INVALID_INPUT');
    expect(queue.cancel('nope')).toBe(false);
    finish('a');
    await a;
  });
});
