"""kgpub's web layer and command line: Flask app, content negotiation, the `kgpub` CLI."""
