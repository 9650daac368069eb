"""What a config names, made real: resolving and building the generator and scorer (``build``), components
by name and plugins (``registry``), the initial caption banks (``bank``), the response cache, the VLM baselines."""
