import { describe, expect, it } from 'vitest';
import { FEATURES, REQUIRED_COMPONENTS } from '../../models/contract';
import { componentsFor, featureComponents, graphsFor } from './request';

describe('the components a request needs', () => {
  it('runs the graphs in pipeline order, per mode and input', () => {
    expect(graphsFor({ settings: { mode: 'txt2img' } })).toEqual([
      'text_encoder',
      'prior',
      'unet',
      'movq_decoder',
    ]);
    expect(graphsFor({ settings: { mode: 'inpaint' }, initImage: true })).toEqual([
      'text_encoder',
      'prior',
      'movq_encoder',
      'unet_inpaint',
      'movq_decoder',
    ]);
    expect(graphsFor({ settings: { mode: 'depth' }, initImage: true })).toEqual([
      'depth_estimator',
      'text_encoder',
      'prior',
      'movq_encoder',
      'unet_depth',
      'movq_decoder',
    ]);
    // A given map is the hint: no estimator; no photo: no encoder.
    expect(graphsFor({ settings: { mode: 'depth' }, depthMap: true })).toEqual([
      'text_encoder',
      'prior',
      'unet_depth',
      'movq_decoder',
    ]);
    expect(graphsFor({ settings: { mode: 'img2img', priorStrength: 0.5 }, initImage: true })).toEqual([
      'text_encoder',
      'image_encoder',
      'prior',
      'movq_encoder',
      'unet',
      'movq_decoder',
    ]);
  });

  it('reads the image encoder only when a picture is mixed', () => {
    expect(componentsFor({ settings: { mode: 'txt2img' }, mix: [{ kind: 'prompt' }] })).not.toContain(
      'image_encoder',
    );
    expect(componentsFor({ settings: { mode: 'txt2img' }, mix: [{ kind: 'image' }] })).toContain(
      'image_encoder',
    );
  });

  it('gives each feature of the model manager what it needs beyond text→image', () => {
    const beyond = Object.fromEntries(
      FEATURES.map((f) => [f, featureComponents(f).filter((id) => !REQUIRED_COMPONENTS.includes(id))]),
    );
    expect(beyond).toEqual({
      'text-to-image': [],
      'image-to-image': ['movq_encoder'],
      inpainting: ['movq_encoder', 'unet_inpaint'],
      'depth-control': ['unet_depth'],
      'image-prompt': ['image_encoder'],
      'depth-from-photo': ['depth_estimator', 'movq_encoder', 'unet_depth'],
    });
    // Text→image needs exactly the components every set must have.
    expect(new Set(featureComponents('text-to-image'))).toEqual(new Set(REQUIRED_COMPONENTS));
  });
});
