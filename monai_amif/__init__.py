"""monai_amif: AMIF, an authorizable medical image-fusion model for MONAI.

Without the licence key the fused output carries a visible copyright mark; the right key unlocks the clean fusion.
The gate is learned into the network weights.
"""

__version__ = "0.1.0"
