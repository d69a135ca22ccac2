"""orders.cancel_order, then the console's "operator" and "viewer" groups (apps.accounts.roles).

Permissions are normally created after `migrate` finishes (post_migrate); the roles need them
now, so they are created here first for every app (create_permissions is idempotent)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_create(apps, schema_editor):
    from apps.accounts.roles import roles_sync  # migrations import app code only when they run

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("catalog", "0002_stockmovement"),
        ("deals", "0005_deal_run_permission"),
        ("orders", "0003_order_user_deal_index"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="order",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [("cancel_order", "Can cancel orders (their units go back)")],
            },
        ),
        migrations.RunPython(roles_create, migrations.RunPython.noop),
    ]
