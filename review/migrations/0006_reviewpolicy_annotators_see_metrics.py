from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0005_reviewpolicy_risk_ask"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewpolicy",
            name="annotators_see_metrics",
            field=models.BooleanField(
                default=False,
                help_text="Let annotators open the comparison and dashboards (admins always can).",
            ),
        ),
    ]
