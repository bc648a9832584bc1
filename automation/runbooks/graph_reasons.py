"""Why each dependency of the DR runbooks' graphs is one: the failover and the failback switch share most.

Each names the behaviour (and its catalogue entry) that makes the step wait:
`automation.runbooks.graph` explains how the graphs are used.
"""

FENCE_BEFORE_PROMOTION = (
    "promotion stops replication: a write the returning primary took after that would be lost, so Route53 must "
    "answer the DR region only before it starts (catalogue: route53.cloudwatch-metric-check-follows-the-alarm)"
)
PROMOTE_AFTER_FINAL_SYNC = (
    "promotion opens the replica for writes: it must have received every write of the fenced writer first "
    "(catalogue: rds.oldest-replication-slot-lag)"
)
FINAL_SYNC_AFTER_FENCE = (
    "only after the write fence does an empty replication slot mean that the replica has every write (catalogue: "
    "rds.oldest-replication-slot-lag, rds.read-only-parameter-is-a-session-default)"
)
REPLICA_HAS_EVERYTHING_FOR_READS = (
    "users move to the replica once it has every write: its reads are then as current as the fenced writer's, "
    "and it refuses writes as the fenced writer does"
)
CACHE_AFTER_WRITES_STOP = (
    "the cache's writer moves once writes have stopped: until then the application writes its sessions where it "
    "writes its rows"
)
COMMIT_AFTER_FINAL_SYNC = (
    "the config is the commitment to the other region: written once the replica has every write (the write "
    "changes nothing in AWS)"
)
COMMIT_AFTER_EVERY_PART_MOVED = (
    "a planned switch commits to the other region only once the cache moved too: a cache that cannot fail over "
    "stops it before anything is promoted (the cache fails over beside the final sync, so this costs nothing)"
)
PREVIEW_OF_THE_CONFIG = "previews the config the update applies"
UPDATE_AS_PREVIEWED = (
    "the update applies what its preview showed and the policy pack and the stateful-resource guard passed"
)
ONE_NODE_GROUP_UPDATE_AT_A_TIME = (
    "the update sets the node group's size too, and EKS refuses a second node group update while one is in "
    "progress (catalogue: eks.node-group-update-is-asynchronous)"
)
NODES_AFTER_REQUEST = "nodes boot once the Auto Scaling group was changed (catalogue: eks.active-is-not-ready)"
CLIENTS_FOLLOW_ROUTE53 = (
    "clients follow Route53's answer, which the fence changes, once their resolver's cached answer expired "
    "(catalogue: dns.resolvers-cache-for-the-ttl)"
)
CONVERGE_AFTER_UPDATE = "a promoted PostgreSQL replica may need a second update for its backup settings (#4419)"
ONE_STACK_UPDATE_AT_A_TIME = (
    "one stack update at a time: the stack lock refuses a second, and converging may update again "
    "(catalogue: pulumi-cli.diy-lock-refuses-second-update)"
)
NOTIFY_THE_OUTCOME = "publishes the verified outcome with every step's warnings and follow-ups"
NOTIFY_THE_WINDOW = "publishes the data-loss window"
WRITE_FENCE_ONCE_DR_IS_READY = (
    "a planned switch stops the primary's writes only once the DR region is ready to take them (its serving nodes "
    "Ready, its parameter group open for writes): a failure before the fence leaves production writable, and "
    "`drctl failover abort` undoes one after it while the DR database is still a replica"
)
