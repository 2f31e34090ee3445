"""vault: see DESIGN.md; built in the vault issue."""

__all__: list[str] = []
