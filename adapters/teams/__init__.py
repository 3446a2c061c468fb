"""Teams from buzz: legacy persona packs (:mod:`.pack`) and ``buzz-team-snapshot`` files
(:mod:`.snapshot`), read and checked into persona definitions and a team; what is
recorded from them is :mod:`adapters.usecases.teams`'s."""
