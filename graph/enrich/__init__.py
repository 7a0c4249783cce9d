"""Enrichment computed at build time: related entries by meaning (graph/enrich/related.py),
the vectors they come from (graph/enrich/model.py) and what a release keeps of them
(graph/enrich/store.py). Needs the [enrich] extra; graph/publishers.py does not."""
