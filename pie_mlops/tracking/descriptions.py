"""What the registry UI says about a registered model and each of its versions."""

from __future__ import annotations


def study_description(tags: dict) -> str:
    return (f"PIE study of {tags.get('dataset', '?')} with {tags.get('arch', '?')}: the dense and pruned models "
            f"(one version per group and seed) whose modal predictions `pie-mlops compare` contrasts. Aliases: "
            f"dense-s<seed>, <group>-s<seed>, and champion (the pruned version to ship).")


def version_description(tags: dict, metrics: dict) -> str:
    """Group, sparsity, seed and scores, in one line the registry UI shows."""
    parts = [f"Group {tags.get('group', '?')}, seed {tags.get('seed', '?')}"]
    if tags.get("group") != "dense":
        parts.append(f"sparsity {tags.get('achieved_sparsity', tags.get('sparsity', '?'))}"
                     f" (target {tags.get('sparsity', '?')})")
    parts += [f"{split} score {metrics[f'{split}_score']:.4f}" for split in ("test", "validation")
              if f"{split}_score" in metrics]
    return ", ".join(parts) + " (accuracy; macro-F1 for multi-label)."
