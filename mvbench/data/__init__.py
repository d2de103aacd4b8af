"""Everything about data files: reading .mat files (:mod:`matfile`), datasets given by path
(:mod:`pathdataset`), the data directory (:mod:`datadir`), checksummed downloads (:mod:`fetch`)
and per-view feature scaling (:mod:`preprocessing`)."""
