"""Reports: published reference numbers and Markdown tables next to them."""
