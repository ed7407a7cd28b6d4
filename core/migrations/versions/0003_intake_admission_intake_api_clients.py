"""admission intake (cancelled stays, merged patients) and API clients

Revision ID: 0003_intake
Revises: 0002_tasks
Create Date: 2026-11-28 13:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_intake'
down_revision = '0002_tasks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('admission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_patient_merged_into_id_patient'), 'patient',
                                    ['merged_into_id'], ['id'])
    op.create_table(
        'api_client',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=32), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by', sa.String(length=32), nullable=True),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_client')),
        sa.UniqueConstraint('client_id', name=op.f('uq_api_client_client_id')),
    )
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['api_client.id'],
                                name=op.f('fk_api_token_client_id_api_client'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash')),
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_token_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('api_token')
    op.drop_table('api_client')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_patient_merged_into_id_patient'),
                                 type_='foreignkey')
        batch_op.drop_column('merged_into_id')
    with op.batch_alter_table('admission', schema=None) as batch_op:
        batch_op.drop_column('cancelled_at')
