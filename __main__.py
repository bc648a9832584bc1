"""dr-platform: an active-passive, two-region AWS platform.

Thin on purpose: read the config once, build one set of components per region
role, wire the cross-region pieces, export what automation needs. Every choice
that depends on where the platform stands in the DR state machine is derived
from the validated config inside the components.
"""

import pulumi

from automation.dr_state import authority_object_key
from components.alerting import declare_alerting
from components.backup import Backup, cross_account_copy_role
from components.cache import Cache, CacheRegionArgs
from components.cluster import Cluster, node_group_size
from components.config import ROLES, load_config
from components.database import Database
from components.encryption import RegionalKey, RegionalKeyArgs
from components.fault_injection import FaultInjection
from components.fence_publisher import FencePublisher
from components.heartbeat import ReplicationHeartbeat
from components.load_balancer_controller import LoadBalancerController
from components.monitoring import Monitoring
from components.naming import (
    cache_auth_secret_name,
    cache_group_id,
    cache_subnet_group_name,
    cluster_name,
    global_datastore_suffix,
    load_balancer_name,
    monitoring_node_group_name,
    node_group_name,
    physical_name,
    target_group_name,
)
from components.network import Network
from components.providers import global_provider, regional_providers
from components.restore_testing import RestoreTesting
from components.storage import Storage
from components.traffic import DnsFailover, EntryPoint, HostedZone

cfg = load_config()
providers = regional_providers(cfg)
# IAM and Route53 are global: declared through the DR region's provider, which a failover counts on.
iam_provider = global_provider(providers)
# The other account a vault's recovery points are copied to shares the key of that vault's region.
copy_out_of_account = cross_account_copy_role(cfg)

networks: dict[str, Network] = {}
keys: dict[str, RegionalKey] = {}
clusters: dict[str, Cluster] = {}
for role in ROLES:
    region = cfg.region_of(role)
    in_region = pulumi.ResourceOptions(provider=providers[role])
    networks[role] = Network(
        f"network-{role}",
        {
            "region": region,
            "cidr": cfg.regions[role].vpc_cidr,
            "availability_zone_ids": cfg.regions[role].availability_zone_ids,
            "name_prefix": physical_name(cfg, region, "net"),
        },
        in_region,
    )
    key_args: RegionalKeyArgs = {
        "alias": physical_name(cfg, region, "data"),
        "description": f"dr-platform data at rest in {region}",
        # From state, not an STS call: the program must run while a region's APIs are down.
        "account_id": networks[role].vpc.owner_id,
    }
    if role == copy_out_of_account and cfg.backup_cross_account_vault_arn:
        key_args["backup_copy_account"] = cfg.backup_cross_account_vault_arn.split(":")[4]
    keys[role] = RegionalKey(f"kms-{role}", key_args, in_region)
    clusters[role] = Cluster(
        f"eks-{role}",
        {
            "region": region,
            "cluster_name": cluster_name(cfg, role),
            "node_group_name": node_group_name(cfg, role),
            "monitoring_node_group_name": monitoring_node_group_name(cfg, role),
            "kubernetes_version": cfg.eks_version,
            "public_endpoint": cfg.eks_public_endpoint,
            "public_access_cidrs": cfg.eks_public_access_cidrs,
            "private_access_cidrs": cfg.eks_private_access_cidrs,
            "subnet_ids": networks[role].app_subnet_ids,
            "kms_key_arn": keys[role].arn,
            "instance_types": cfg.node_instance_types,
            "size": node_group_size(cfg, role),
            "admin_principal_arns": cfg.eks_admin_principal_arns,
            "log_retention_days": cfg.log_group_retention_days,
            "account_id": networks[role].vpc.owner_id,
            "global_provider": iam_provider,
        },
        in_region,
    )

cache = Cache(
    "redis",
    {
        "regions": {
            role: CacheRegionArgs(
                provider=providers[role],
                group_id=cache_group_id(cfg, role),
                subnet_group_name=cache_subnet_group_name(cfg, role),
                auth_secret_name=cache_auth_secret_name(cfg, role),
                subnet_ids=networks[role].data_subnet_ids,
                security_group_id=networks[role].cache_security_group.id,
                kms_key_arn=keys[role].arn,
            )
            for role in ROLES
        },
        "global_datastore_suffix": global_datastore_suffix(cfg),
        "node_type": cfg.cache_node_type,
        "engine_version": cfg.cache_engine_version,
        "replicas_per_group": cfg.cache_replicas_per_group,
        "snapshot_retention_days": min(cfg.backup_daily_retention_days, 35),
    },
)

account_id = networks["primary"].vpc.owner_id
database = Database("database", {"config": cfg, "providers": providers, "networks": networks, "keys": keys})
storage = Storage("storage", {"config": cfg, "providers": providers, "keys": keys, "account_id": account_id})
backup = Backup(
    "backup",
    {
        "config": cfg,
        "providers": providers,
        "keys": keys,
        "protected": {
            role: [instance.arn, storage.buckets[role].arn] for role, instance in database.standalone.items()
        },
        "account_id": account_id,
    },
)
# AWS restores the newest backups of each vault every day, and a validator checks them.
restore_tests = {
    role: RestoreTesting(
        f"restore-tests-{role}",
        {
            "config": cfg,
            "role": role,
            "vault_arn": backup.vaults[role].arn,
            "key_arn": keys[role].arn,
            "restore_role_arn": backup.restore_role.arn,
            "vpc_id": networks[role].vpc_id,
            "subnet_ids": networks[role].app_subnet_ids,
            "database_security_group_id": networks[role].database_security_group.id,
            "global_provider": iam_provider,
        },
        pulumi.ResourceOptions(provider=providers[role]),
    )
    for role in ROLES
}

zone = HostedZone(
    "dns",
    {"zone_name": cfg.zone_name, "zone_id": cfg.zone_id, "create": cfg.create_zone},
    pulumi.ResourceOptions(provider=iam_provider),
)
entry_points = {
    role: EntryPoint(
        f"entry-{role}",
        {
            "app_fqdn": cfg.app_fqdn,
            "zone_id": zone.zone_id,
            "ingress_hostname": cfg.regions[role].ingress_hostname,
            "vpc_id": networks[role].vpc_id,
            "vpc_cidr": cfg.regions[role].vpc_cidr,
            "public_subnet_ids": networks[role].public_subnet_ids,
            "load_balancer_name": load_balancer_name(cfg, role),
            "target_group_name": target_group_name(cfg, role),
            "health_check_path": cfg.health_check_path,
            "validate_certificate": cfg.certificates_validated,
            "global_provider": iam_provider,
        },
        pulumi.ResourceOptions(provider=providers[role]),
    )
    for role in ROLES
}
# A row written to the writer every 30 s, so an idle database's replica lag stays far below the RPO and the
# lag alarms page only when replication is behind. Each cluster writes to its own region's instance only
# while that is the writer: nothing of it changes with the DR state.
for role in ROLES:
    ReplicationHeartbeat(
        f"heartbeat-{role}",
        {
            "config": cfg,
            "role": role,
            "instance_address": database.addresses[role],
            "secret_name": database.master_secret.name,
            "key_arn": keys[role].arn,
            "account_id": account_id,
            "cluster_name": clusters[role].name,
            "cluster_arn": clusters[role].arn,
            "global_provider": iam_provider,
        },
        pulumi.ResourceOptions(providers=[clusters[role].kubernetes_provider, providers[role]]),
    )

# The controller that registers application pods in each region's target group (TargetGroupBinding).
for role in ROLES:
    LoadBalancerController(
        f"lb-controller-{role}",
        {
            "region": cfg.region_of(role),
            "cluster_name": clusters[role].name,
            "cluster_arn": clusters[role].arn,
            "vpc_id": networks[role].vpc_id,
            "global_provider": iam_provider,
            "after": [clusters[role].node_group, clusters[role].pod_identity_agent],
        },
        pulumi.ResourceOptions(providers=[clusters[role].kubernetes_provider, providers[role]]),
    )
dns = DnsFailover(
    "dns-failover",
    {
        "zone_id": zone.zone_id,
        "record_name": cfg.app_fqdn,
        "ttl": cfg.dns_ttl_seconds,
        "endpoints": {role: entry_points[role].hostname for role in ROLES},
        "active_role": cfg.active_role,
        "standby_role": cfg.standby_role,
        "health_check_path": cfg.health_check_path,
        "health_check_interval_seconds": cfg.health_check_interval_seconds,
        "health_check_failure_threshold": cfg.health_check_failure_threshold,
        "health_check_names": {role: physical_name(cfg, cfg.region_of(role), "endpoint") for role in ROLES},
        "fence_region": cfg.dr_region,
        "fence_alarm_name": physical_name(cfg, cfg.dr_region, "traffic-fence"),
        "failover_mode": cfg.dns_failover_mode,
    },
    # Route53's checks and records (global) and the fence's alarm (in the DR region): the DR provider.
    pulumi.ResourceOptions(provider=providers["dr"]),
)

alerting = declare_alerting(cfg, providers, keys, account_id, dns.health_check_ids)

# Puts the fence's value every minute in the DR region, from the DR state authority drctl writes.
fence_publisher = FencePublisher(
    "fence-publisher",
    {
        "config": cfg,
        "account_id": account_id,
        # The stack as drctl names it (DRCTL_STACK); a self-managed backend's organization is `organization`.
        "authority_key": authority_object_key(
            f"{pulumi.get_organization() or 'organization'}/{pulumi.get_project()}/{pulumi.get_stack()}",
            cfg.control_store_prefix,
        ),
        "namespace": dns.fence["namespace"],
        "metric_name": dns.fence["metricName"],
        "dimensions": dns.fence["dimensions"],
        "alert_topic_arn": alerting.topics[cfg.dr_region].arn,
        "global_provider": iam_provider,
    },
    pulumi.ResourceOptions(provider=providers["dr"]),
)

# Live drills only (faultInjection): AWS FIS templates that cut a region off, stopped by its abort alarm.
fault_injection = {
    role: FaultInjection(
        f"fault-injection-{role}",
        {
            "config": cfg,
            "role": role,
            "account_id": account_id,
            "subnet_arns": [s.arn for s in (*networks[role].app_subnets, *networks[role].data_subnets)],
            "alert_topic_arn": alerting.topics[cfg.region_of(role)].arn,
            "global_provider": iam_provider,
        },
        pulumi.ResourceOptions(provider=providers[role]),
    )
    for role in ROLES
    if cfg.fault_injection.enabled
}

# After the alert topics: each cluster's Alertmanager publishes to its region's topic.
for role in ROLES:
    Monitoring(
        f"monitoring-{role}",
        {
            "config": cfg,
            "role": role,
            "ebs_kms_key_arn": clusters[role].ebs_kms_key_arn,
            "ebs_csi_driver": clusters[role].ebs_csi_driver,
            "cluster_name": clusters[role].name,
            "cluster_arn": clusters[role].arn,
            "alert_topic_arn": alerting.topics[cfg.region_of(role)].arn,
            "alert_topic_kms_key_arn": keys[role].arn,
            "heartbeat_topic_arn": alerting.heartbeat_topics[role].arn,
            "monitoring_nodes": clusters[role].monitoring_node_group,
            "global_provider": iam_provider,
        },
        # Kubernetes resources go to the cluster, the roles and Pod Identity associations to its region.
        pulumi.ResourceOptions(providers=[clusters[role].kubernetes_provider, providers[role]]),
    )

pulumi.export("primaryRegion", cfg.primary_region)
pulumi.export("drRegion", cfg.dr_region)
pulumi.export("activeRegion", cfg.active_region)
pulumi.export("drState", cfg.dr_state.value)
pulumi.export("network", {cfg.region_of(role): {"vpcId": networks[role].vpc_id} for role in ROLES})
pulumi.export("kmsKeys", {cfg.region_of(role): keys[role].arn for role in ROLES})
pulumi.export(
    "cache",
    {
        "globalDatastoreId": cache.global_datastore_id,
        "declaredPrimaryRegion": cfg.region_of(cache.seed_role),
        "groups": {cfg.region_of(role): cache.group_ids[role] for role in ROLES},
    },
)
pulumi.export(
    "clusters",
    {
        cfg.region_of(role): {
            "name": clusters[role].name,
            "nodeGroup": clusters[role].node_group_name,
            "minSize": clusters[role].size.min,
            "desiredSize": clusters[role].size.desired,
            "maxSize": clusters[role].size.max,
            "monitoringNodeGroup": clusters[role].monitoring_node_group_name,
        }
        for role in ROLES
    },
)
pulumi.export("database", database.summary)
pulumi.export("databaseCredentials", database.credentials)
pulumi.export("buckets", storage.summary)
pulumi.export("replication", storage.replication)
pulumi.export("backupVaults", backup.summary)
pulumi.export("restoreTesting", {cfg.region_of(role): tests.summary for role, tests in restore_tests.items()})
pulumi.export(
    "faultInjection",
    {cfg.region_of(role): drills.summary for role, drills in fault_injection.items()} if fault_injection else None,
)
pulumi.export(
    "dns",
    {
        "zoneId": zone.zone_id,
        "zoneName": cfg.zone_name,
        "nameServers": zone.name_servers,
        "recordName": cfg.app_fqdn,
        "ttl": cfg.dns_ttl_seconds,
        "healthChecks": {cfg.region_of(role): dns.health_check_ids[role] for role in ROLES},
        "routingChecks": {cfg.region_of(role): dns.routing_check_ids[role] for role in ROLES},
        "fence": {
            **dns.fence,
            "fencedRegion": cfg.region_of(dns.fence["fencedRole"]),
            "publisher": fence_publisher.summary,
        },
        "endpoints": {cfg.region_of(role): entry_points[role].hostname for role in ROLES},
    },
)
pulumi.export(
    "entryPoints",
    {
        cfg.region_of(role): {
            "hostname": entry_points[role].hostname,
            "targetGroupArn": entry_points[role].target_group_arn,
            "loadBalancerSecurityGroupId": entry_points[role].security_group_id,
            "loadBalancer": entry_points[role].load_balancer_arn_suffix,
        }
        for role in ROLES
    },
)
pulumi.export("alertTopics", {region: topic.arn for region, topic in alerting.topics.items()})
