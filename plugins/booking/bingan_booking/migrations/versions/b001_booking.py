"""booking: accounts, sessions, SMS codes and log, lookups, bookings, photos, payment
notices, and the sandbox payment platform's orders

Revision ID: b001_booking
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "b001_booking"
down_revision = None
branch_labels = ("booking",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table('booking_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('phone_verified_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_account')),
    sa.UniqueConstraint('openid', name=op.f('uq_booking_account_openid'))
    )
    op.create_index(op.f('ix_booking_account_phone'), 'booking_account', ['phone'], unique=False)
    op.create_table('booking_pay_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.String(length=64), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('result', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_pay_notice')),
    sa.UniqueConstraint('notice_id', name=op.f('uq_booking_pay_notice_notice_id'))
    )
    op.create_index(op.f('ix_booking_pay_notice_out_trade_no'), 'booking_pay_notice', ['out_trade_no'], unique=False)
    op.create_table('booking_sandbox_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('prepay_id', sa.String(length=64), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('mchid', sa.String(length=32), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=128), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('notify_url', sa.String(length=512), nullable=False),
    sa.Column('trade_state', sa.String(length=16), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('refunds', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_sandbox_order')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_booking_sandbox_order_out_trade_no')),
    sa.UniqueConstraint('prepay_id', name=op.f('uq_booking_sandbox_order_prepay_id'))
    )
    op.create_table('booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('booking_no', sa.String(length=32), nullable=False),
    sa.Column('hospital', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('applicant_kind', sa.String(length=8), nullable=False),
    sa.Column('applicant_name', sa.String(length=64), nullable=False),
    sa.Column('agent_relation', sa.String(length=32), nullable=True),
    sa.Column('agent_id_enc', sa.LargeBinary(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('patient_name', sa.String(length=64), nullable=False),
    sa.Column('mrn', sa.String(length=32), nullable=False),
    sa.Column('admissions', sa.JSON(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('copies', sa.Integer(), nullable=False),
    sa.Column('delivery', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=True),
    sa.Column('recipient_phone', sa.String(length=16), nullable=True),
    sa.Column('address', sa.String(length=256), nullable=True),
    sa.Column('fee_fen', sa.Integer(), nullable=False),
    sa.Column('courier_fee_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pay_status', sa.String(length=16), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('prepay_id', sa.String(length=64), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('paid_fen', sa.Integer(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('refund_no', sa.String(length=64), nullable=True),
    sa.Column('refunded_at', sa.DateTime(), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=32), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(), nullable=True),
    sa.Column('copy_request_no', sa.String(length=32), nullable=True),
    sa.Column('courier_company', sa.String(length=32), nullable=True),
    sa.Column('tracking_no', sa.String(length=32), nullable=True),
    sa.Column('shipped_at', sa.DateTime(), nullable=True),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['booking_account.id'], name=op.f('fk_booking_account_id_booking_account')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_booking_patient_id_patient')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking')),
    sa.UniqueConstraint('booking_no', name=op.f('uq_booking_booking_no')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_booking_out_trade_no')),
    sa.UniqueConstraint('public_id', name=op.f('uq_booking_public_id'))
    )
    op.create_index(op.f('ix_booking_account_id'), 'booking', ['account_id'], unique=False)
    op.create_index('ix_booking_created_at', 'booking', ['created_at'], unique=False)
    op.create_index(op.f('ix_booking_patient_id'), 'booking', ['patient_id'], unique=False)
    op.create_index('ix_booking_phone', 'booking', ['phone'], unique=False)
    op.create_index('ix_booking_status', 'booking', ['status'], unique=False)
    op.create_table('booking_lookup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('found', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['booking_account.id'], name=op.f('fk_booking_lookup_account_id_booking_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_lookup'))
    )
    op.create_index(op.f('ix_booking_lookup_account_id'), 'booking_lookup', ['account_id'], unique=False)
    op.create_index(op.f('ix_booking_lookup_at'), 'booking_lookup', ['at'], unique=False)
    op.create_table('booking_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['booking_account.id'], name=op.f('fk_booking_session_account_id_booking_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_booking_session_token_hash'))
    )
    op.create_index(op.f('ix_booking_session_account_id'), 'booking_session', ['account_id'], unique=False)
    op.create_table('booking_sms_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['booking_account.id'], name=op.f('fk_booking_sms_code_account_id_booking_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_sms_code'))
    )
    op.create_index(op.f('ix_booking_sms_code_account_id'), 'booking_sms_code', ['account_id'], unique=False)
    op.create_index(op.f('ix_booking_sms_code_phone'), 'booking_sms_code', ['phone'], unique=False)
    op.create_table('booking_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('blob_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_booking_document_booking_id_booking'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_document'))
    )
    op.create_index(op.f('ix_booking_document_booking_id'), 'booking_document', ['booking_id'], unique=False)
    op.create_table('booking_sms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('provider_ref', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_booking_sms_booking_id_booking')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_sms'))
    )
    op.create_index('ix_booking_sms_phone_at', 'booking_sms', ['phone', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_table("booking_sms")
    op.drop_table("booking_document")
    op.drop_table("booking_sms_code")
    op.drop_table("booking_session")
    op.drop_table("booking_lookup")
    op.drop_table("booking")
    op.drop_table("booking_sandbox_order")
    op.drop_table("booking_pay_notice")
    op.drop_table("booking_account")
