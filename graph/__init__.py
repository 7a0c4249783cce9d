"""kgpub's pure library: listing pages -> RDF -> SHACL validation -> publication."""
