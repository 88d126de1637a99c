"""The two pixel neighbourhoods that decide which labelled pixels form one part.

One home for both, with numpy alone, so that the data layer (which reads the expert label
images and must not load torch) and the output steps share the same structures.
"""

from __future__ import annotations

import numpy as np

#: Pixels that share an edge. The ADIR expert labels count their clusters so (ABOUT.md: 265
#: pairs, 101 overlapping and 164 touching), and arms cut apart beside an overlap stay apart.
FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
#: Pixels that share an edge or a corner: a thin chromosome drawn at a slant stays one part.
EIGHT_CONNECTED = np.ones((3, 3), bool)
