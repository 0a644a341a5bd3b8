/**
 * SLOT: the model manager (issue 7, item 5) goes here once the store API in workers/store/ is
 * final: model set source, components with sizes and status, download/pause/resume, storage
 * used and free, persistent storage, delete. Replace this placeholder; keep the section's
 * data-slot so layout tests still find it.
 */
export function ModelManagerSlot() {
  return (
    <section
      className="panel model-manager-slot"
      aria-labelledby="model-manager-heading"
      data-slot="model-manager"
    >
      <h2 id="model-manager-heading">Models</h2>
      <p className="detail">
        The model manager is coming: download, import and manage the Kandinsky 2.2 model set.
      </p>
    </section>
  );
}
