/**
 * What `kandinsky_export.py --hub` downloads, decided from a repo's file list before any download
 * (models/export/hub.py, standard-library Python until it downloads): the configs, tokenizer and
 * scheduler, and per model folder one set of safetensors weights — plain or the `fp16` variant,
 * single or sharded with its index, in either shard naming — never `.bin`; and the errors a wrong
 * repo id or a folder without safetensors get.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const EXPORT = fileURLToPath(new URL('./export/', import.meta.url));

// Reads a list of requests from stdin and prints, for each, {ok} or {error} with what hub.py
// printed: its functions as data, one Python process for many calls.
const RUNNER = `
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import hub
answers = []
for request in json.load(sys.stdin):
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            if request["call"] == "plan":
                repos = {role: hub.parse_repo(text) for role, text in request["repos"].items()}
                result = hub.plan_downloads(repos, request["listings"], request["components"], request["preferred"])
            else:
                result = {role: str(ref) for role, ref in hub.resolve_repos(request["repos"], request.get("depth")).items()}
        answer = {"ok": result}
    except (SystemExit, ValueError) as error:
        answer = {"error": str(error)}
    if printed.getvalue():
        answer["printed"] = printed.getvalue()
    answers.append(answer)
print(json.dumps(answers))
`;

interface Answer {
  ok?: unknown;
  error?: string;
  printed?: string;
}

function hubCalls(requests: object[]): Answer[] {
  const stdout = execFileSync('python3', ['-c', RUNNER, EXPORT], { input: JSON.stringify(requests) });
  return JSON.parse(stdout.toString('utf8')) as Answer[];
}
const hub = (request: object): Answer => hubCalls([request])[0] as Answer;

// Laid out as kandinsky-community publishes its pipelines: .bin beside .safetensors, fp16 variants.
const PRIOR_FILES = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'tokenizer/tokenizer_config.json',
  'tokenizer/special_tokens_map.json',
  'image_processor/preprocessor_config.json',
  'prior/config.json',
  'prior/diffusion_pytorch_model.bin',
  'prior/diffusion_pytorch_model.safetensors',
  'prior/diffusion_pytorch_model.fp16.safetensors',
  'text_encoder/config.json',
  'text_encoder/pytorch_model.bin',
  'text_encoder/model.safetensors',
  'text_encoder/model.fp16.safetensors',
  'image_encoder/config.json',
  'image_encoder/model-00001-of-00002.safetensors',
  'image_encoder/model-00002-of-00002.safetensors',
  'image_encoder/model.safetensors.index.json',
  'image_encoder/model.fp16.safetensors',
];
const DECODER_FILES = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'movq/config.json',
  'movq/diffusion_pytorch_model.safetensors',
  'unet/config.json',
  // older diffusers named variant shards this way
  'unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors',
  'unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors',
  'unet/diffusion_pytorch_model.safetensors.index.fp16.json',
];
const plan = (preferred: string | null, components: string[], decoder = DECODER_FILES) =>
  hub({
    call: 'plan',
    repos: { prior: 'a/prior', decoder: 'a/decoder@v2' },
    listings: { prior: PRIOR_FILES, decoder },
    components,
    preferred,
  });

describe('hub.py download plan', () => {
  it('takes each folder’s plain safetensors (single or sharded), its config, the tokenizer and scheduler', () => {
    expect(
      plan(null, ['text_encoder', 'prior', 'image_encoder', 'unet', 'movq_decoder', 'movq_encoder']),
    ).toEqual({
      ok: {
        prior: [
          'model_index.json',
          'scheduler/*.json',
          'tokenizer/*',
          'text_encoder/config.json',
          'text_encoder/model.safetensors',
          'prior/config.json',
          'prior/diffusion_pytorch_model.safetensors',
          'image_encoder/config.json',
          'image_encoder/model-00001-of-00002.safetensors',
          'image_encoder/model-00002-of-00002.safetensors',
          'image_encoder/model.safetensors.index.json',
        ],
        decoder: [
          'model_index.json',
          'scheduler/*.json',
          // no plain UNet weights: the fp16 variant, in the older shard naming
          'unet/config.json',
          'unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors',
          'unet/diffusion_pytorch_model-00002-of-00002.fp16.safetensors',
          'unet/diffusion_pytorch_model.safetensors.index.fp16.json',
          'movq/config.json',
          'movq/diffusion_pytorch_model.safetensors',
        ],
      },
      printed: 'a/decoder@v2: unet/ has no fp32 weights; reading the fp16 variant\n',
    });
  });

  it('with fp16 preferred, takes the fp16 files where a folder has them, and only the components asked for', () => {
    expect(plan('fp16', ['image_encoder', 'movq_decoder'])).toEqual({
      ok: {
        prior: [
          'model_index.json',
          'scheduler/*.json',
          'tokenizer/*',
          'image_encoder/config.json',
          'image_encoder/model.fp16.safetensors',
        ],
        decoder: [
          'model_index.json',
          'scheduler/*.json',
          'movq/config.json',
          'movq/diffusion_pytorch_model.safetensors',
        ],
      },
      printed: 'a/decoder@v2: movq/ has no fp16 weights; reading the fp32 weights\n',
    });
  });

  it('refuses a folder without safetensors or without config.json, naming the repo and folder', () => {
    const binOnly = plan(null, ['unet'], ['unet/config.json', 'unet/diffusion_pytorch_model.bin']);
    expect(binOnly.error).toBe(
      'a/decoder@v2: unet/ has no .safetensors weights (it holds config.json, diffusion_pytorch_model.bin). ' +
        'The export reads safetensors only: pick a revision that has them (owner/name@revision).',
    );
    const noConfig = plan(null, ['unet'], ['unet/diffusion_pytorch_model.safetensors']);
    expect(noConfig.error).toContain('a/decoder@v2: unet/ has no config.json');
  });

  it('fills the repos left out with kandinsky-community’s and rejects what is not a repo id', () => {
    expect(hub({ call: 'resolve', repos: ['me/prior@v1', 'me/decoder'], depth: 'me/depth' })).toEqual({
      ok: {
        prior: 'me/prior@v1',
        decoder: 'me/decoder',
        inpaint: 'kandinsky-community/kandinsky-2-2-decoder-inpaint',
        controlnet_depth: 'kandinsky-community/kandinsky-2-2-controlnet-depth',
        depth_estimator: 'me/depth',
      },
    });
    const bad = ['prior', 'me/prior@', 'me/pri/or', 'me/..prior'];
    expect(hubCalls(bad.map((text) => ({ call: 'resolve', repos: [text] })))).toEqual(
      bad.map((text) => ({
        error:
          `'${text}' is not a Hub repo id: give owner/name or owner/name@revision ` +
          '(e.g. kandinsky-community/kandinsky-2-2-prior or kandinsky-community/kandinsky-2-2-prior@main)',
      })),
    );
    expect(hub({ call: 'resolve', repos: ['a/1', 'a/2', 'a/3', 'a/4', 'a/5'] }).error).toContain(
      '--hub takes at most 4 repo ids',
    );
  });
});
