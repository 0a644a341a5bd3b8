import type { GenerationSettings } from '../../workers/api';
import { downloadBlob, pngFileName, useObjectUrl } from '../use-object-url';
import type { ResultImage } from './use-generation';

interface Props {
  readonly images: readonly ResultImage[];
  readonly onUseSeed: (seed: number) => void;
}

export function Results({ images, onUseSeed }: Props) {
  return (
    <ul className="results" aria-label="Results" data-testid="results">
      {images.map((image) => (
        <ResultCard key={image.key} image={image} onUseSeed={onUseSeed} />
      ))}
    </ul>
  );
}

function ResultCard({
  image,
  onUseSeed,
}: {
  readonly image: ResultImage;
  readonly onUseSeed: (seed: number) => void;
}) {
  const url = useObjectUrl(image.png);
  const { settings } = image;
  return (
    <li className="result">
      {url && <img src={url} alt={describeImage(settings)} width={settings.width} height={settings.height} />}
      <div className="result-actions">
        <span className="seed" data-testid="result-seed">
          Seed <code>{settings.seed}</code>
        </span>
        <button type="button" className="secondary" onClick={() => onUseSeed(settings.seed)}>
          Use this seed
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => downloadBlob(image.png, pngFileName(settings))}
        >
          Download PNG
        </button>
      </div>
    </li>
  );
}

export function describeImage(settings: GenerationSettings): string {
  return settings.prompt ? `Generated: ${settings.prompt}` : 'Generated image';
}
