"""Rich display for notebook outputs: Markdown (for export) and HTML (for JupyterLab)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Section"]


@dataclass
class Section:
    """A titled piece of findings: data for code, Markdown for people."""

    title: str
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)

    def _repr_markdown_(self) -> str:
        return f"### {self.title}\n\n{self.markdown}"

    def __repr__(self) -> str:
        return f"{self.title}\n{self.markdown}"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]
