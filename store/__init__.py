"""The artifact contract, the lowest layer above `util`: how a built model folder is written, verified, read and
released (manifests, hashes, the live and shadow links, the release log). It knows nothing of models' kinds,
serving or HTTP; every other layer may import it.
"""
