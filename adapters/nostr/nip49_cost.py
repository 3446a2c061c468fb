"""NIP-49's scrypt work factor ``log_n``: the default fleetsync seals with, and the most it accepts.

Apart from :mod:`adapters.nostr.nip49` (which seals and opens with libsodium) so
that the command line's help can quote them without loading libsodium.
"""

from __future__ import annotations

from typing import Final

# 2^16 rounds, 64 MiB: the smallest row of the NIP's table of costs.
DEFAULT_LOG_N: Final = 16
# scrypt asks for 128 * r * 2^log_n bytes; above 2^22 (4 GiB) nobody restores a backup.
MAX_LOG_N: Final = 22
