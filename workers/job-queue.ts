import { KandinskyError } from './errors';

/** Runs one job; must settle soon after `signal` aborts (rejecting with a CANCELLED error). */
export type JobRunner<Request, Result> = (
  request: Request,
  signal: AbortSignal,
  jobId: string,
) => Promise<Result>;

interface Job<Request, Result> {
  readonly id: string;
  readonly request: Request;
  readonly controller: AbortController;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * One generation at a time: a GPU runs one pipeline well and two badly (both would hold their
 * weights and activations). Later jobs wait in order; any job, waiting or running, can be cancelled.
 */
export class JobQueue<Request, Result> {
  private readonly waiting: Job<Request, Result>[] = [];
  private running: Job<Request, Result> | null = null;

  constructor(
    private readonly runner: JobRunner<Request, Result>,
    /** Told the place of every waiting job whenever the queue moves (0 = next). */
    private readonly onQueueChange: (positions: ReadonlyMap<string, number>) => void = () => {},
  ) {}

  submit(id: string, request: Request): Promise<Result> {
    if (this.running?.id === id || this.waiting.some((job) => job.id === id)) {
      return Promise.reject(new KandinskyError('INVALID_INPUT', `A job with id "${id}" is already queued.`));
    }
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ id, request, controller: new AbortController(), resolve, reject });
      this.announce();
      this.pump();
    });
  }

  /** Cancels a waiting or running job. Returns false when no such job is queued or running. */
  cancel(id: string): boolean {
    if (this.running?.id === id) {
      this.running.controller.abort();
      return true;
    }
    const index = this.waiting.findIndex((job) => job.id === id);
    if (index < 0) return false;
    const [job] = this.waiting.splice(index, 1);
    if (job) job.reject(new KandinskyError('CANCELLED', 'The job was cancelled before it started.'));
    this.announce();
    return true;
  }

  get size(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  private announce(): void {
    this.onQueueChange(new Map(this.waiting.map((job, place) => [job.id, place])));
  }

  private pump(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    this.announce();
    const settle = () => {
      this.running = null;
      this.pump();
    };
    this.runner(job.request, job.controller.signal, job.id).then(
      (result) => {
        settle();
        job.resolve(result);
      },
      (error: unknown) => {
        settle();
        job.reject(
          job.controller.signal.aborted && !(error instanceof KandinskyError && error.code === 'CANCELLED')
            ? new KandinskyError('CANCELLED', 'The job was cancelled.', { cause: error })
            : error,
        );
      },
    );
  }
}
