"""The statuses of an Auto Scaling instance refresh, as AWS names them: one list for the local
region that sets them and for the stages that wait on them."""

from __future__ import annotations

# The fleet is still changing.
IN_PROGRESS = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# The refresh is over: nothing more will happen to the fleet because of it.
ENDED = frozenset({"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
